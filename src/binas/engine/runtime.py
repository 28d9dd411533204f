"""Where and how a run executes: device, seeds, threads and the (optional) torchrun process group.

All of this is decided once, at the edge (the CLI), and handed down as a :class:`Runtime`. Library
code never picks a device or touches global RNG state itself (architecture.md, "Rules").

Reproducibility of binary nets: ``sign()`` turns a last-bit difference in a float32 sum into a flipped
activation, and the flip then changes the whole trajectory. CPU kernels split reductions (conv, matmul)
across threads, and the split changes the summation order, so bit-exact reruns and exact ``--resume``
need the same seed, the same thread count (:func:`set_num_threads`) and deterministic kernels
(:func:`seed_everything`).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import logging
import os
import random
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from binas.errors import BinasError
from binas.seeds import SEED_BITS as _SEED_BITS

logger = logging.getLogger(__name__)

T = TypeVar("T")

_NUMPY_SEED_MOD = 2**32
# cuBLAS needs this set before its first call to be deterministic (CUDA docs, "Results reproducibility").
_CUBLAS_WORKSPACE = ":4096:8"


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:<i>" | "mps"`` into a device that exists here.

    ``"auto"`` is CUDA when available, else CPU. Asking for an accelerator that is absent is a one-line
    ``BinasError`` rather than a crash deep inside the first ``.to(device)``.
    """
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise BinasError(f"invalid device '{spec}': use auto, cpu, cuda, cuda:<index> or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BinasError(f"device '{spec}' requested but CUDA is not available here; use cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise BinasError(f"device '{spec}' requested but only {count} CUDA device(s) are visible")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise BinasError(f"device '{spec}' requested but MPS is not available here; use cpu or auto")
    elif device.type != "cpu":
        raise BinasError(f"unsupported device '{spec}': use auto, cpu, cuda, cuda:<index> or mps")
    return device


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, numpy and torch (CPU and all CUDA devices); optionally force deterministic kernels.

    Called once per process by the CLI. With ``deterministic`` (the default) cuDNN autotuning is off,
    cuDNN picks deterministic algorithms and ``torch.use_deterministic_algorithms(True, warn_only=True)``
    is set: ops without a deterministic version warn instead of failing.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**_SEED_BITS:
        raise BinasError(f"seed must be an integer in [0, 2**{_SEED_BITS}), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % _NUMPY_SEED_MOD)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", _CUBLAS_WORKSPACE)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    # Deterministic mode also fills every new tensor with NaN (to expose reads of uninitialised memory):
    # ~10% of a forward pass on the CPU and no effect on results, so it is off.
    with contextlib.suppress(ImportError):  # torch >= 2.1
        # A module whose class defines this property at runtime; typed Any since ModuleType does not declare it.
        deterministic_flags: Any = importlib.import_module("torch.utils.deterministic")
        deterministic_flags.fill_uninitialized_memory = False
    logger.debug("seeded python/numpy/torch with %d (deterministic=%s)", seed, deterministic)


def set_num_threads(n: int | None) -> int:
    """Fix the number of intra-op CPU threads (``None`` keeps torch's default); return the count in use.

    The count is part of what makes a run reproducible (see the module docstring): record it with the
    run, and resume with the same value.
    """
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise BinasError(f"num_threads must be a positive integer or null, got {n!r}")
        torch.set_num_threads(n)
    return torch.get_num_threads()


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a (possibly single-process) run, as torchrun describes it."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes logs, metrics, checkpoints and the run directory."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        if default is None:
            raise BinasError(f"environment variable {name} is not set (launch with torchrun)")
        return default
    try:
        return int(raw)
    except ValueError:
        raise BinasError(f"environment variable {name} must be an integer, got {raw!r}") from None


def init_distributed(device_spec: str = "auto") -> DistributedContext:
    """Read torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; join the process group when there are peers.

    With ``WORLD_SIZE`` unset or 1 this returns a single-process context and never touches
    ``torch.distributed``. Otherwise it uses NCCL on CUDA (one device per local rank, made current)
    and Gloo on CPU; ``MASTER_ADDR``/``MASTER_PORT`` come from the environment (``env://``).
    """
    world_size = _env_int("WORLD_SIZE", 1)
    device = resolve_device(device_spec)
    if world_size <= 1:
        return DistributedContext(device=device)
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise BinasError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA device(s)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_available():
        raise BinasError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = collective_timeout()
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, timeout=timeout)
        logger.info(
            "joined process group: rank %d/%d (%s) on %s, collective timeout %s",
            rank,
            world_size,
            backend,
            device,
            timeout,
        )
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


#: Seconds a collective waits for the other ranks before the process group fails (env BINAS_DIST_TIMEOUT):
#: a rank that died makes the others exit with an error within this time instead of hanging (a dead
#: Gloo peer usually fails the collective at once, through its closed connection).
DIST_TIMEOUT_SECONDS = 600


def collective_timeout() -> datetime.timedelta:
    """The process group's timeout: `BINAS_DIST_TIMEOUT` seconds if set, else `DIST_TIMEOUT_SECONDS`."""
    text = os.environ.get("BINAS_DIST_TIMEOUT", str(DIST_TIMEOUT_SECONDS))
    try:
        seconds = float(text)
    except ValueError:
        raise BinasError(f"BINAS_DIST_TIMEOUT must be a number of seconds, got {text!r}") from None
    if not seconds > 0:
        raise BinasError(f"BINAS_DIST_TIMEOUT must be > 0 seconds, got {text!r}")
    return datetime.timedelta(seconds=seconds)


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if not _active():
        return
    if dist.get_backend() == "nccl":  # name the device, or NCCL guesses one and warns
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def broadcast_object(obj: T, src: int = 0) -> T:
    """Return rank ``src``'s ``obj`` on every rank (picklable objects; no-op in a single process)."""
    if not _active():
        return obj
    box: list[Any] = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over all ranks, as a new tensor (single process: ``tensor`` itself).

    Integer tensors are averaged in float32. The input is never modified in place.
    """
    if not _active():
        return tensor
    out = tensor.detach().clone()
    if not out.is_floating_point():
        out = out.to(torch.float32)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.div_(dist.get_world_size())


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Each value averaged over all ranks (an epoch record's means, when every rank saw its own shard)."""
    if not _active() or not values:
        return values
    keys = sorted(values)
    return dict(zip(keys, all_reduce_mean(torch.tensor([float(values[k]) for k in keys])).tolist(), strict=True))


def cleanup_distributed() -> None:
    """Leave the process group if one was joined (safe to call always, e.g. in a ``finally``)."""
    if _active():
        dist.destroy_process_group()


@dataclass(frozen=True)
class Runtime:
    """Everything about *where* a run executes, decided once and passed down explicitly."""

    device: torch.device
    dist: DistributedContext
    seed: int
    num_threads: int
    deterministic: bool = True

    @property
    def is_main(self) -> bool:
        return self.dist.is_main


def setup_runtime(
    device: str = "auto", seed: int = 0, *, num_threads: int | None = None, deterministic: bool = True
) -> Runtime:
    """Resolve the device, join torchrun's process group if any, fix threads and seed; once per process.

    Every rank is seeded with the same ``seed`` so that models start identical; per-rank streams (data
    order, augmentation) should use ``derive_seed(seed, "rank", rank)`` explicitly.
    """
    ctx = init_distributed(device)
    threads = set_num_threads(num_threads)
    seed_everything(seed, deterministic=deterministic)
    logger.debug(
        "runtime: %s, %d CPU thread(s)%s, seed %d",
        ctx.device,
        threads,
        "" if num_threads is not None else " (torch's default)",
        seed,
    )
    return Runtime(device=ctx.device, dist=ctx, seed=seed, num_threads=threads, deterministic=deterministic)


def preferred_memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CPU: oneDNN's depth-wise convs (most of a DARTS cell) run 3-5x faster in NHWC
    there (measured in benchmarks/search_cost.py); the default layout elsewhere."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def place(module: ModuleT, device: torch.device) -> ModuleT:
    """`module` on `device` in the memory format that is fastest there (`preferred_memory_format`)."""
    # torch's stubs omit Module.to's memory_format keyword, which it accepts (it converts 4-d parameters).
    return module.to(device, memory_format=preferred_memory_format(device))  # type: ignore[call-overload]
