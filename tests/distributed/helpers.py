"""Spawning torchrun-like Gloo workers on 127.0.0.1 for the multi-process tests."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

WORLD_SIZE = 2
TIMEOUT_S = 90  # a hung rendezvous or collective must fail the test, not hang CI


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_rank(rank: int, world_size: int, port: int) -> None:
    """Set the environment torchrun would set for `rank`, and one CPU thread."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)


def spawn(worker: Callable[..., None], *args: Any, nprocs: int = WORLD_SIZE) -> None:
    """Run `worker(rank, port, *args)` in `nprocs` processes; fail on an error or after TIMEOUT_S."""
    context = mp.spawn(worker, args=(free_port(), *args), nprocs=nprocs, join=False)
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=1):  # re-raises a worker's exception
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"distributed workers did not finish within {TIMEOUT_S} s")
