"""Two real processes on Gloo: init_distributed from torchrun-style env vars, broadcast, all-reduce."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from binas.engine.runtime import (
    all_reduce_mean,
    barrier,
    broadcast_object,
    cleanup_distributed,
    init_distributed,
)

WORLD_SIZE = 2
TIMEOUT_S = 60  # a hung rendezvous must fail the test, not hang CI


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker(rank: int, port: int, out_dir: str) -> None:
    """One torchrun-like rank: the env vars are what torchrun would set."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD_SIZE),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    try:
        shared = broadcast_object({"run_dir": f"runs/from-rank-{rank}", "rank": rank})
        mean = all_reduce_mean(torch.tensor([float(rank + 1), 10.0 * rank]))
        int_mean = all_reduce_mean(torch.tensor([rank], dtype=torch.int64))
        barrier()
        result = {
            "rank": ctx.rank,
            "world_size": ctx.world_size,
            "local_rank": ctx.local_rank,
            "is_main": ctx.is_main,
            "backend": dist.get_backend(),
            "shared": shared,
            "mean": mean.tolist(),
            "int_mean": int_mean.tolist(),
            "int_dtype": str(int_mean.dtype),
        }
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        cleanup_distributed()


def test_two_process_gloo(tmp_path: Path) -> None:
    context = mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=False)
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=1):  # re-raises a worker's exception
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"distributed workers did not finish within {TIMEOUT_S} s")
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    for rank, res in enumerate(results):
        assert res["rank"] == res["local_rank"] == rank and res["world_size"] == WORLD_SIZE
        assert res["is_main"] == (rank == 0) and res["backend"] == "gloo"
        assert res["shared"] == {"run_dir": "runs/from-rank-0", "rank": 0}
        assert res["mean"] == [1.5, 5.0]
        assert res["int_mean"] == [0.5] and res["int_dtype"] == "torch.float32"
