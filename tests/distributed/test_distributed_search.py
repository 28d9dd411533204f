"""`binas search --method darts` in two Gloo processes (torchrun-style): the ranks end with identical
architecture parameters, weights and genotype (EpochLoop averages gradients and shards the data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from binas.engine.loop import EpochLoop
from binas.engine.runtime import cleanup_distributed, setup_runtime
from binas.engine.searcher import run_search
from binas.workflows import search as api
from tests.conftest import tiny_run_config
from tests.distributed.helpers import WORLD_SIZE, as_rank, spawn


def search_worker(rank: int, port: int, out_dir: str) -> None:
    as_rank(rank, WORLD_SIZE, port)
    runtime = setup_runtime("cpu", 0, num_threads=1)
    try:
        strategy = api.build_strategy(tiny_run_config("darts", epochs=2), runtime)
        result = run_search(strategy, Path(out_dir) / "run", progress=False)
        loop = EpochLoop(runtime, 0, 8, progress=False)
        first = next(iter(loop.batches(strategy.ctx.train_data, stream="probe")))[0]
        torch.save(
            {
                "alpha": strategy.arch.state_dict(),
                "genotype": result.genotype.to_dict(),
                "weights": strategy.supernet.state_dict(),
                "batch": first.shape[0],
            },
            Path(out_dir) / f"rank{rank}.pt",
        )
    finally:
        cleanup_distributed()


@pytest.mark.slow
def test_darts_search_in_two_processes_keeps_ranks_identical(tmp_path):
    spawn(search_worker, str(tmp_path))
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE))
    assert r0["genotype"] == r1["genotype"]
    assert r0["alpha"].keys() == r1["alpha"].keys() and r0["alpha"]
    for key in r0["alpha"]:
        assert torch.equal(r0["alpha"][key], r1["alpha"][key]), key
    weights = [k for k in r0["weights"] if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert all(torch.equal(r0["weights"][k], r1["weights"][k]) for k in weights)
    assert (tmp_path / "run" / "genotype.json").is_file()
    assert r0["batch"] == r1["batch"] == 8 // WORLD_SIZE  # search.batch_size is global, as train.batch_size
