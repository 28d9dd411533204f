"""Latency measured on the current device: a timer for modules and a lookup table (LUT) of mobile blocks.

The table follows ProxylessNAS's mobile LUT idea (spec ddpnas §2.1: keys naming the block's input size,
channels, kernel, expansion, stride and shortcut), but binas measures it itself on the device the user
will run on, instead of shipping numbers from a phone: `binas latency-table` writes it as JSON, and
`binas generate --latency-ms` reuses it. A table records the device, thread count, batch size and
torch version it was measured with; a table measured elsewhere is refused rather than silently used.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from binas.generation.budgets import GenerationError

#: Timing protocol: untimed warm-up calls, then the median of timed calls (robust to a busy machine).
WARMUP_CALLS = 3
TIMED_CALLS = 10
MS_PER_S = 1e3
TABLE_FORMAT = "binas-latency-table"
TABLE_VERSION = 1


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_latency(
    module: nn.Module,
    input_shape: tuple[int, ...],
    *,
    device: torch.device | None = None,
    warmup: int = WARMUP_CALLS,
    repeats: int = TIMED_CALLS,
    forward: Callable[[torch.Tensor], Any] | None = None,
) -> float:
    """Median milliseconds of one eval-mode forward of `module` on a zero input of `input_shape`."""
    from binas.engine.runtime import preferred_memory_format

    device = device or next((p.device for p in module.parameters()), torch.device("cpu"))
    x = torch.zeros(input_shape, device=device)
    if x.dim() == 4:  # the layout the engine runs models in on this device
        fmt = preferred_memory_format(device)
        module.to(memory_format=fmt)  # type: ignore[call-overload]  # stubs omit `Module.to`'s `memory_format`
        x = x.contiguous(memory_format=fmt)
    run = forward or module
    was_training = module.training
    module.eval()
    try:
        for _ in range(warmup):
            run(x)
        _sync(device)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run(x)
            _sync(device)
            times.append(time.perf_counter() - t0)
    finally:
        module.train(was_training)
    return statistics.median(times) * MS_PER_S


def device_description(device: torch.device) -> str:
    """`'cuda: NVIDIA H100'` or `'cpu: x86_64'`: what the table's numbers are valid for."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"{device.type}: {platform.machine() or 'unknown'}"


@dataclass
class LatencyTable:
    """Measured milliseconds per module key, with the conditions they were measured under."""

    device: str
    threads: int
    batch_size: int
    torch_version: str = torch.__version__
    entries: dict[str, float] = field(default_factory=dict)

    def conditions(self) -> tuple[str, int, int]:
        return self.device, self.threads, self.batch_size

    def lookup(self, key: str) -> float:
        try:
            return self.entries[key]
        except KeyError:
            raise GenerationError(
                f"latency table has no entry '{key}'; re-measure it with `binas latency-table`"
            ) from None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": TABLE_FORMAT, "version": TABLE_VERSION, **asdict(self)}
        path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GenerationError(f"latency table not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise GenerationError(f"cannot read latency table {path}: {err}") from None
        if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
            raise GenerationError(f"{path} is not a binas latency table")
        try:
            return cls(
                device=str(data["device"]),
                threads=int(data["threads"]),
                batch_size=int(data["batch_size"]),
                torch_version=str(data.get("torch_version", "")),
                entries={str(k): float(v) for k, v in data["entries"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise GenerationError(f"latency table {path} is malformed: {err}") from None

    def check_matches(self, device: torch.device, batch_size: int) -> None:
        """Refuse a table measured on another device, thread count or batch size."""
        here = (device_description(device), torch.get_num_threads(), batch_size)
        if self.conditions() != here:
            raise GenerationError(
                f"latency table was measured on {self.device} with {self.threads} thread(s), batch {self.batch_size}; "
                f"this run is {here[0]} with {here[1]} thread(s), batch {here[2]}: re-measure it with "
                "`binas latency-table`"
            )
