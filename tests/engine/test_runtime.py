"""Device resolution, seeding, thread count and the single-process distributed helpers."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
import torch.distributed as dist

from binas.engine.runtime import (
    DistributedContext,
    Runtime,
    all_reduce_mean,
    barrier,
    broadcast_object,
    cleanup_distributed,
    init_distributed,
    resolve_device,
    seed_everything,
    set_num_threads,
    setup_runtime,
)
from binas.errors import BinasError
from binas.seeds import derive_seed

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def restore_global_torch_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """seed_everything / set_num_threads change process-wide settings: put them back for other tests."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    flags = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.get_num_threads(),
    )
    yield
    torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags[2], flags[3]
    torch.set_num_threads(flags[4])


@pytest.fixture
def no_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)


def one_line_error(fn: Callable[..., object], *args: object) -> str:
    with pytest.raises(BinasError) as info:
        fn(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


# ---------------------------------------------------------------------------------------- devices


def test_resolve_cpu_and_auto_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")


def test_resolve_auto_prefers_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_resolve_cuda_without_cuda_is_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "CUDA is not available" in one_line_error(resolve_device, "cuda")
    assert "CUDA is not available" in one_line_error(resolve_device, "cuda:1")


def test_resolve_cuda_index_out_of_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert "only 1 CUDA device" in one_line_error(resolve_device, "cuda:1")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "", "meta"])
def test_resolve_invalid_spec(spec: str) -> None:
    assert spec in one_line_error(resolve_device, spec)


# ---------------------------------------------------------------------------------------- seeds, threads


def draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


@pytest.mark.usefixtures("restore_global_torch_state")
def test_seed_everything_repeats_draws() -> None:
    seed_everything(123)
    first = draws()
    seed_everything(123)
    assert draws() == first
    seed_everything(124)
    assert draws() != first
    assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark


@pytest.mark.usefixtures("restore_global_torch_state")
def test_seed_everything_large_seed_and_nondeterministic() -> None:
    seed_everything(derive_seed(0, "x"), deterministic=False)  # > 2**32: numpy gets it reduced
    assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "3", True])
def test_seed_everything_rejects_bad_seed(seed: object) -> None:
    one_line_error(seed_everything, seed)


def test_derive_seed_is_stable_and_distinct() -> None:
    # Pinned: derived seeds must not change between versions, or resumed runs would diverge.
    assert derive_seed(0, "epoch", 1) == derive_seed(0, "epoch", 1) == 4431594060881242092
    assert derive_seed(0, "epoch", 1) != derive_seed(0, "epoch", 2)
    assert derive_seed(0, "epoch", 1) != derive_seed(1, "epoch", 1)
    assert derive_seed(0, 1) != derive_seed(0, "1")
    values = [derive_seed(s, k) for s in range(20) for k in ("a", "b")]
    assert all(0 <= v < 2**63 for v in values) and len(set(values)) == len(values)


@pytest.mark.usefixtures("restore_global_torch_state")
def test_set_num_threads() -> None:
    assert set_num_threads(1) == 1 == torch.get_num_threads()
    assert set_num_threads(None) == 1
    for bad in (0, -2, 1.5):
        one_line_error(set_num_threads, bad)


# ---------------------------------------------------------------------------------------- distributed


@pytest.mark.usefixtures("no_torchrun_env")
def test_single_process_context_without_torch_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("init_process_group must not be called in a single process")

    monkeypatch.setattr(dist, "init_process_group", forbidden)
    ctx = init_distributed("cpu")
    assert ctx == DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    assert ctx.is_main and not ctx.is_distributed
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert init_distributed("cpu").world_size == 1
    assert not dist.is_initialized()


def test_single_process_helpers_are_noops() -> None:
    assert not dist.is_initialized()
    barrier()
    obj = {"a": [1, 2]}
    assert broadcast_object(obj) is obj
    t = torch.tensor([1.0, 3.0])
    assert torch.equal(all_reduce_mean(t), t)
    cleanup_distributed()


@pytest.mark.usefixtures("no_torchrun_env")
def test_bad_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert "WORLD_SIZE" in one_line_error(init_distributed, "cpu")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert "RANK" in one_line_error(init_distributed, "cpu")


def test_non_main_rank_context() -> None:
    ctx = DistributedContext(rank=1, world_size=2, local_rank=1)
    assert not ctx.is_main and ctx.is_distributed and ctx.device == torch.device("cpu")


@pytest.mark.usefixtures("no_torchrun_env", "restore_global_torch_state")
def test_setup_runtime_single_process() -> None:
    rt = setup_runtime("cpu", seed=5, num_threads=1)
    assert isinstance(rt, Runtime)
    assert rt.device == torch.device("cpu") and rt.dist.world_size == 1 and rt.is_main
    assert rt.seed == 5 and rt.num_threads == 1 and rt.deterministic
    first = torch.rand(2)
    setup_runtime("cpu", seed=5, num_threads=1)
    assert torch.equal(torch.rand(2), first)
