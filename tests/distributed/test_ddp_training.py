"""Two Gloo processes train like one process on the same global batch (DDP + global BatchNorm), and
evaluate exactly like one process; the trainer only writes files from rank 0."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from binas.data import make_synthetic
from binas.engine.distributed import GlobalBatchNorm
from binas.engine.evaluator import evaluate
from binas.engine.runtime import cleanup_distributed, setup_runtime
from binas.engine.trainer import TrainJob, run_phase
from binas.genotype import get_genotype
from binas.nets import Network
from binas.optim.builders import build_optimizer, cosine_with_warmup
from binas.quant.policy import BinarizationPolicy
from tests.distributed.helpers import WORLD_SIZE, as_rank, spawn

SEED = 3
GLOBAL_BATCH = 16
SAMPLES = 64  # a multiple of the global batch: no padded shard, every global batch is the same in 1 or 2 processes


def _train(runtime, run_dir: Path, policy: str) -> tuple[dict, list]:
    """Train a tiny float64 network for 2 epochs; no shuffling or augmentation, so the global batches of one
    and of two processes are the same samples (DistributedSampler deals them round-robin)."""
    data = make_synthetic(SAMPLES, image_size=8, seed=0)
    net = Network(
        get_genotype("darts-v2"), num_classes=10, channels=4, layers=3, policy=BinarizationPolicy.preset(policy)
    ).double()

    def loss_fn(out, x, y):
        return F.cross_entropy(out[0], y), {}

    job = TrainJob(
        "ddp",
        net,
        data,
        None,
        2,
        GLOBAL_BATCH,
        make_optimizer=lambda m: build_optimizer(m, "adamw", lr=1e-2, weight_decay=1e-4),
        lr=lambda p: cosine_with_warmup(1e-2, 1e-4, p, 2, 0.5),
        loss_fn=loss_fn,
        grad_clip=5.0,
        augment=False,
        shuffle=False,
    )
    run_phase(job, runtime, run_dir, progress=False)
    result = evaluate(
        net,
        make_synthetic(30, image_size=8, seed=0, split="test"),
        batch_size=8,
        rank=runtime.dist.rank,
        world_size=runtime.dist.world_size,
    )
    bn = sum(isinstance(m, GlobalBatchNorm) for m in net.modules())
    return {k: v.clone() for k, v in net.state_dict().items()}, [result.to_dict(), bn]


POLICIES = ("real", "released")


def worker(rank: int, port: int, out_dir: str) -> None:
    as_rank(rank, WORLD_SIZE, port)
    try:
        for policy in POLICIES:
            runtime = setup_runtime("cpu", SEED, num_threads=1)
            state, extra = _train(runtime, Path(out_dir) / f"{policy}{rank}", policy)
            torch.save({"state": state, "extra": extra}, Path(out_dir) / f"{policy}-rank{rank}.pt")
    finally:
        cleanup_distributed()


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    spawn(worker, str(tmp_path))
    for policy in POLICIES:
        ranks = [torch.load(tmp_path / f"{policy}-rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]
        runtime = setup_runtime("cpu", SEED, num_threads=1)
        single, (_, no_bn) = _train(runtime, tmp_path / f"{policy}-single", policy)
        assert no_bn == 0 and ranks[0]["extra"][1] > 0  # BatchNorm is global only under torchrun
        for key, value in single.items():
            assert torch.equal(ranks[0]["state"][key], ranks[1]["state"][key]), key  # ranks agree exactly
            if policy == "real":  # a 1-bit net turns float64 rounding into sign flips (implementation-notes §2)
                assert torch.allclose(ranks[0]["state"][key], value, rtol=1e-9, atol=1e-11), key
        # sharded evaluation (each rank scores every other sample, sums all-reduced) = one process's
        net = Network(
            get_genotype("darts-v2"), num_classes=10, channels=4, layers=3, policy=BinarizationPolicy.preset(policy)
        ).double()
        net.load_state_dict(ranks[0]["state"])
        expected = evaluate(net, make_synthetic(30, image_size=8, seed=0, split="test"), batch_size=8).to_dict()
        for got in (ranks[0]["extra"][0], ranks[1]["extra"][0]):
            assert got["samples"] == expected["samples"] == 30
            assert got["top1"] == pytest.approx(expected["top1"]) and got["loss"] == pytest.approx(expected["loss"])
        assert (tmp_path / f"{policy}0" / "checkpoint.pt").is_file() and not (tmp_path / f"{policy}1").exists()
