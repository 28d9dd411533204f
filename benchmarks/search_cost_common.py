"""What every part of `search_cost.py` shares: timing one engine epoch, peak memory, process isolation,
the machine's description, the library's presets, and the results file (parts not run keep their results)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from binas.config.io import load_config
from binas.config.preset_files import get_preset
from binas.config.schema import RunConfig
from binas.data import DatasetInfo, dataset_info, load_training_set
from binas.engine.loop import EpochLoop
from binas.engine.runtime import Runtime, resolve_device, seed_everything, setup_runtime
from binas.seeds import derive_seed

#: Untimed batches per split before a timed epoch in (c) and (d) (first calls allocate and pick kernels).
WARMUP_BATCHES = 1


def preset_config(name: str) -> RunConfig:
    """The shipped preset `name` (`binas/config/presets/NAME.yaml`), as `binas ... --config NAME` reads it."""
    return load_config(RunConfig, get_preset(name).path)


def data_info(cfg: RunConfig) -> tuple[DatasetInfo, int]:
    """The data set description (its resolved image size included) and the training samples of `cfg.data`."""
    data = cfg.data
    train = load_training_set(
        data.name, data_dir=data.data_dir, image_size=data.image_size, max_samples=data.max_train_samples
    )
    return dataset_info(train), len(train)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def make_runtime(threads: int | None, device: str = "cpu") -> Runtime:
    return setup_runtime(device, 0, num_threads=threads)


def sync(device: torch.device) -> None:
    """Wait for queued kernels, so that wall-clock times cover them (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_device_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def device_peak(device: torch.device) -> dict[str, float]:
    """`cuda_peak_mb` (torch.cuda.max_memory_allocated since the last reset) on CUDA, else nothing."""
    if device.type != "cuda":
        return {}
    torch.cuda.synchronize(device)
    return {"cuda_peak_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}


@dataclass
class CappedLoop(EpochLoop):
    """An `EpochLoop` whose every batch stream stops after `cap` batches (warm-ups)."""

    cap: int | None = None

    def batches(self, dataset, *, max_batches=None, **kwargs):
        if self.cap is not None:
            max_batches = self.cap if max_batches is None else min(self.cap, max_batches)
        return super().batches(dataset, max_batches=max_batches, **kwargs)


def run_epoch(
    strategy, runtime: Runtime, batch_size: int, epoch: int = 0, max_batches: int | None = None
) -> tuple[float, dict[str, float]]:
    """Seconds and metrics of `strategy.run_epoch`; `max_batches` caps every batch stream (warm-ups)."""
    seed_everything(derive_seed(0, "search-epoch", epoch))
    loop = CappedLoop(runtime, epoch, batch_size, augment=False, progress=False, cap=max_batches)
    sync(runtime.device)
    t0 = time.perf_counter()
    metrics = strategy.run_epoch(epoch, loop)
    sync(runtime.device)
    return time.perf_counter() - t0, metrics


def _isolated(fn, *args) -> dict[str, Any]:
    result = dict(fn(*args))
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    return result


def run_case(fn, *args) -> dict[str, Any]:
    """Run one case in a fresh spawned process (its own peak RSS, no warm caches from other cases)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_isolated, fn, *args).result()


def run_in_process(fn, *args) -> dict[str, Any]:
    """Run one case in this process (fast; its peak RSS is the running maximum of the whole run)."""
    return _isolated(fn, *args)


def machine(args: argparse.Namespace, load_before: tuple[float, ...]) -> dict[str, Any]:
    device = resolve_device(args.device)
    return {
        "cpus": os.cpu_count(),
        "threads": args.threads or torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }


def progress(part: str, name: str, started: float, result: dict[str, Any]) -> None:
    """One line per finished case on stderr (a full run takes minutes)."""
    seconds = result.get("seconds_per_epoch", result.get("seconds"))
    took, load = time.perf_counter() - started, os.getloadavg()[0]
    print(
        f"  ({part}) {name}: {seconds:.2f} s, peak {result['peak_rss_mb']:.0f} MB; case took {took:.0f} s, "
        f"load {load:.2f}",
        file=sys.stderr,
        flush=True,
    )


def memory_cell(r: dict[str, Any]) -> str:
    return f"{r['peak_rss_mb']:.0f}" + (f"/{r['cuda_peak_mb']:.0f}" if "cuda_peak_mb" in r else "")


def merge_results(existing: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The results file after a run: the keys this run wrote replace the old ones, the rest are kept."""
    return existing | new


def load_existing(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SystemExit(f"{path} is not valid JSON ({e}); move it away or pass another --out") from None
    if not isinstance(data, dict):
        raise SystemExit(f"{path} does not hold a JSON object; move it away or pass another --out")
    return data
