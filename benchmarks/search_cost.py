"""Search cost on this machine (a script, not a test): seconds per step / epoch and peak memory.

(a) One first-order DARTS step (alpha step + weight step) on the DARTS CIFAR-10 search supernet
    (C=16, 8 cells, batch 32, 32x32 inputs, 10 classes), the same with PC-DARTS (K=4), both real, and one
    DCP-NAS step pair (a Parent step + a Child step) on that supernet with `ggn` and `exact`, with the share
    of the Child step spent in the curvature product (and both products on plain autograd, without
    `fast_double_backward`, for comparison). The strategies' own `run_epoch` runs on a split of
    exactly one batch, so the step code is theirs, not a re-implementation.
(b) One epoch of first-order DARTS, DCP-NAS (`ggn`) and DCP-NAS (`exact`) on the digits defaults, with
    the ratios to the DARTS epoch.
(c) One search epoch of every registered method (`STRATEGIES.names()`) on the digits defaults (`binas
    search --method M` with no other arguments: 16x16, C=8, 5 cells, batch 64), after a one-batch warm-up,
    with its peak memory, its ratio to a DARTS epoch timed in the same process, what one engine epoch
    means for the method, and the epochs of its default schedule (so the whole default search costs about
    epochs x s/epoch). CP-NAS, BNAS and DDPNAS sample one architecture per epoch, whose cost depends on
    the ops drawn, so they are timed over a whole round (8 epochs: every op once per edge) and averaged.
(d) How first-order DARTS, PC-DARTS and DCP-NAS (`ggn`) grow with the number of cells, the channels and
    the batch size, one factor at a time from a base point (C=8, 5 cells, batch 64, digits 16x16): a fixed
    number of batches after a one-batch warm-up, extrapolated to an epoch of the digits search split, with
    peak memory and the ratio to DARTS at the same point.

Each case runs in a fresh process, so its peak RSS is its own (`--isolation none` runs them all in this
process, fast, with a running-maximum RSS; the default for `--quick`). On CUDA (`--device cuda`) every
case also reports `torch.cuda.max_memory_allocated`. The machine is shared, so every DCP-NAS ratio of
(a)-(c) divides by a DARTS step / epoch timed in the same process next to it, not in another process at
another time; (d) runs the three methods of a point one after the other. Run it on a quiet machine
anyway (`uptime`). Results merge into the JSON file: parts not run keep their previous results.

    python benchmarks/search_cost.py [--parts a,b,c,d] [--quick] [--threads N] [--device cpu]
                                     [--isolation auto|process|none] [--out benchmarks/results/search_cost.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from multiprocessing import get_context
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).parent / "results" / "search_cost.json"
PARTS = ("a", "b", "c", "d")
#: The DARTS CIFAR-10 search supernet (Liu et al., 2019): C=16, 8 cells, batch 32 (per GPU in PC-DARTS: 256).
CIFAR_CHANNELS, CIFAR_LAYERS, CIFAR_BATCH, CIFAR_SIZE, CIFAR_CLASSES = 16, 8, 32, 32, 10
#: PC-DARTS channel sampling K (Xu et al., 2020).
PC_DARTS_K = 4
#: Reference times on this 2-core machine for the original code (from the issue text).
ORIGINAL_DARTS_STEP_S, ORIGINAL_PC_DARTS_STEP_S = 9.1, 3.3
#: The spec's tangent weight (spec §5.7), used to time the curvature product.
TANGENT_WEIGHT = 5e-3
#: Digits samples in --quick mode (2 batches of 64 per split).
QUICK_SAMPLES = 256

#: Untimed batches per split before a timed epoch in (c) and (d) (first calls allocate and pick kernels).
WARMUP_BATCHES = 1
#: (c) Methods with one sampled architecture per engine epoch; their epochs differ with the ops drawn, so
#: (c) averages a whole round of them: K = 8 epochs, every DARTS op once per edge.
SAMPLING_METHODS = ("cp-nas", "bnas", "ddpnas")
SAMPLED_EPOCHS = 8
#: (c) Options that differ from the method's defaults: PC-DARTS is timed on an epoch with alpha steps (its
#: default alpha warm-up, 30% of the epochs, only trains the weights and costs less).
METHOD_OPTIONS: dict[str, dict[str, Any]] = {"pc-darts": {"arch_warmup_epochs": 0}}
#: (c) What one engine epoch (`run_epoch`) is for each method (module docstrings of binas.strategies.*).
EPOCH_MEANING = {
    "darts": "one pass over the search training split: per batch a first-order alpha step on a validation "
             "batch and a weight step on a training batch",
    "pc-darts": "as darts, on the partial-channel supernet (1/K of the channels through the ops) with edge "
                "normalisation; timed with alpha steps (arch_warmup_epochs=0: the default warm-up epochs, the "
                "first 30%, only train weights and cost less, so epochs x s/epoch is an upper bound)",
    "dcp-nas": "a Parent round (a first-order DARTS pass on the real supernet) and a Child round (a pass on the "
               "1-bit supernet: tangent alpha-gradient with the GGN curvature product, distillation from the "
               "Parent, reconstruction loss, decoupled backtracking)",
    "cp-nas": "one sampled architecture (one op per edge, single path), trained train_steps batches in both "
              "the real Parent and the 1-bit Child and scored on the whole validation split by both; the "
              "search is rounds x (8+7+...+2) = 35 x rounds epochs, one op per edge dropped every `rounds` "
              "rounds",
    "bnas": "as cp-nas with the Child alone (no Parent is built or trained): one sampled architecture trained "
            "train_steps batches and scored on the validation split",
    "ddpnas": "one sampled architecture (single path) trained for a full pass of the search training split "
              "and validated on the validation split; the search is rounds_per_prune x (8+7+...+2) epochs",
    "random": "one pass over the training split with a fresh random path per batch, then "
              "candidates_per_epoch random genotypes scored on the validation split",
}
#: (c) The same, in a table column; formatted with the method's resolved options.
EPOCH_SHORT = {
    "darts": "1 pass: alpha step + w step per batch",
    "pc-darts": "1 pass as darts, K={partial_channels}",
    "dcp-nas": "Parent pass + Child pass ({hessian})",
    "cp-nas": "1 sampled arch: {train_steps} steps x 2 nets + val",
    "bnas": "1 sampled arch: {train_steps} steps (Child) + val",
    "ddpnas": "1 sampled path: 1 pass + val",
    "random": "1 pass, random paths + {candidates_per_epoch} candidates",
}
#: (c) --quick: 8x8 digits, 16 samples per split, C=4, 3 cells of 1 node, batch 16 (1 batch per split).
QUICK_METHODS = {"image_size": 8, "max_train_samples": 32, "channels": 4, "layers": 3, "steps": 1, "multiplier": 1,
                 "batch_size": 16}
#: (d) The methods (name in the table: registry name, options) and the points: one factor at a time.
SCALING_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "darts": ("darts", {}),
    "pc-darts": ("pc-darts", {"arch_warmup_epochs": 0}),
    "dcp-nas-ggn": ("dcp-nas", {"hessian": "ggn"}),
}
SCALING_BASE = {"layers": 5, "channels": 8, "batch_size": 64, "image_size": 16}
SCALING_FACTORS = {"layers": (3, 5, 8), "channels": (4, 8, 16), "batch_size": (32, 64, 128)}
#: (d) Timed batches per split and point (after the warm-up), extrapolated to an epoch.
SCALING_BATCHES = 3
#: (d) --quick: no warm-up, cells of 1 node (`steps`, `multiplier`) instead of 4.
QUICK_SCALING_BASE = {"layers": 3, "channels": 4, "batch_size": 8, "image_size": 8, "steps": 1, "multiplier": 1}
QUICK_SCALING_FACTORS = {"layers": (3, 4, 5), "channels": (4, 8, 12), "batch_size": (4, 8, 16)}
QUICK_SCALING_BATCHES = 1
#: Keys of the (c) / (d) configurations that go to `SpaceConfig`.
SPACE_KEYS = ("channels", "layers", "steps", "multiplier")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _runtime(threads: int | None, device: str = "cpu"):
    from binas.engine.runtime import setup_runtime

    return setup_runtime(device, 0, num_threads=threads)


def _sync(device) -> None:
    """Wait for queued kernels, so that wall-clock times cover them (a no-op on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_device_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _device_peak(device) -> dict[str, float]:
    """`cuda_peak_mb` (torch.cuda.max_memory_allocated since the last reset) on CUDA, else nothing."""
    import torch

    if device.type != "cuda":
        return {}
    torch.cuda.synchronize(device)
    return {"cuda_peak_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}


def _capped_loop(runtime, epoch: int, batch_size: int, cap: int):
    """An `EpochLoop` whose every batch stream stops after `cap` batches (warm-ups)."""
    from binas.engine.loop import EpochLoop

    class CappedLoop(EpochLoop):
        def batches(self, dataset, *, max_batches=None, **kwargs):
            return super().batches(dataset, max_batches=cap if max_batches is None else min(cap, max_batches),
                                   **kwargs)

    return CappedLoop(runtime, epoch, batch_size, augment=False, progress=False)


def _run_epoch(strategy, runtime, batch_size: int, epoch: int = 0,
               max_batches: int | None = None) -> tuple[float, dict[str, float]]:
    """Seconds and metrics of `strategy.run_epoch`; `max_batches` caps every batch stream (warm-ups)."""
    from binas.engine.loop import EpochLoop
    from binas.engine.runtime import derive_seed, seed_everything

    seed_everything(derive_seed(0, "search-epoch", epoch))
    if max_batches is None:
        loop = EpochLoop(runtime, epoch, batch_size, augment=False, progress=False)
    else:
        loop = _capped_loop(runtime, epoch, batch_size, max_batches)
    _sync(runtime.device)
    t0 = time.perf_counter()
    metrics = strategy.run_epoch(epoch, loop)
    _sync(runtime.device)
    return time.perf_counter() - t0, metrics


def _cifar_strategy(method: str, options: dict[str, Any], runtime):
    """`method` on one batch per split of 32x32 synthetic data, on the DARTS CIFAR-10 search supernet."""
    from binas.config.io import from_dict
    from binas.config.schema import SearchConfig, SpaceConfig
    from binas.data import make_synthetic, split_train_val
    from binas.strategies import STRATEGIES
    from binas.strategies.base import SearchContext

    data = make_synthetic(2 * CIFAR_BATCH, num_classes=CIFAR_CLASSES, image_size=CIFAR_SIZE)
    train, val = split_train_val(data, 0.5, seed=0)
    cls = STRATEGIES.get(method)
    space = SpaceConfig(channels=CIFAR_CHANNELS, layers=CIFAR_LAYERS)
    search = SearchConfig(method=method, epochs=1, batch_size=CIFAR_BATCH, options=options)
    return cls(SearchContext(train, val, data.info, space, search, runtime), from_dict(cls.Config, options)), train


def step_case(method: str, options: dict[str, Any], threads: int | None, repeats: int,
              device: str = "cpu") -> dict[str, Any]:
    """Seconds of one step of `method` (one batch per split) at the DARTS CIFAR-10 search size.

    For DCP-NAS a DARTS step is timed in the same process between its steps (the machine is shared, so
    only interleaved times give a trustworthy ratio), and, for `ggn`, the Child's α-gradient alone with
    no curvature product, with the GGN product and with the exact HVP. `peak_rss_mb` covers the warm-up and
    the timed steps (the DARTS steps in the same process included), not those diagnostics.
    """
    runtime = _runtime(threads, device)
    strategy, train = _cifar_strategy(method, options, runtime)
    baseline = _cifar_strategy("darts", {}, runtime)[0] if method == "dcp-nas" else None
    for s in (strategy, baseline):
        if s is not None:
            _run_epoch(s, runtime, CIFAR_BATCH)  # warm-up
    rows: list[dict[str, float]] = []
    for _ in range(repeats):
        seconds, metrics = _run_epoch(strategy, runtime, CIFAR_BATCH)
        row = {"seconds": seconds} | {k: metrics[k] for k in ("parent_seconds", "child_seconds") if k in metrics}
        if baseline is not None:
            row["darts_step_same_process_s"] = _run_epoch(baseline, runtime, CIFAR_BATCH)[0]
            row["ratio_to_darts_step"] = seconds / row["darts_step_same_process_s"]
            row["child_ratio_to_darts_step"] = row["child_seconds"] / row["darts_step_same_process_s"]
        rows.append(row)
    # Read before the diagnostics below, which also run the products on plain autograd (more memory).
    peak = {"peak_rss_mb": round(_peak_rss_mb(), 1)}
    for row in rows:
        if method == "dcp-nas" and options.get("hessian", "ggn") == "ggn":
            row |= _curvature_times(strategy, train)
            row["ggn_product_share_of_child_step"] = (row["arch_grad_ggn_s"] - row["arch_grad_plain_s"]) / (
                row["child_seconds"])
            row["exact_product_over_ggn_product"] = (row["arch_grad_exact_s"] - row["arch_grad_plain_s"]) / (
                row["arch_grad_ggn_s"] - row["arch_grad_plain_s"])
            for product in ("ggn", "exact"):  # what `fast_double_backward` saves
                row[f"{product}_product_plain_autograd_ratio"] = (
                    row[f"arch_grad_{product}_plain_autograd_s"] - row["arch_grad_plain_s"]) / (
                    row[f"arch_grad_{product}_s"] - row["arch_grad_plain_s"])
    out: dict[str, Any] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    return out | {"all_seconds": [r["seconds"] for r in rows]} | peak | _device_peak(runtime.device)


def _curvature_times(strategy, data) -> dict[str, float]:
    """Child forward + α-gradient on one batch: plain (λ = 0), with the GGN product and with the exact HVP,
    each as the search runs it (`child_forward_context`: `fast_double_backward`) and on plain autograd."""
    import torch

    from binas.engine.runtime import preferred_memory_format
    from binas.objectives.tangent import child_forward_context, tangent_arch_gradient

    device = strategy.device
    x = torch.stack([data[i][0] for i in range(len(data))]).to(device, memory_format=preferred_memory_format(device))
    alphas = [a.detach().requires_grad_(True) for a in strategy.alphas(strategy.child_arch)]
    with torch.no_grad():
        teacher = strategy.parent(x, **{k: torch.softmax(a, -1) for k, a in zip(("normal", "reduce"), alphas)})
    g_parent = [torch.zeros_like(a) for a in alphas]
    out = {}
    cases = (("plain", 0.0, "ggn", True), ("ggn", TANGENT_WEIGHT, "ggn", True),
             ("ggn_plain_autograd", TANGENT_WEIGHT, "ggn", False), ("exact", TANGENT_WEIGHT, "exact", True),
             ("exact_plain_autograd", TANGENT_WEIGHT, "exact", False))
    for name, lam, hessian, as_searched in cases:
        _sync(device)
        t0 = time.perf_counter()
        with child_forward_context(strategy.child, lam=lam, hessian=hessian) if as_searched else nullcontext():
            logits = strategy.child(x, normal=torch.softmax(alphas[0], -1), reduce=torch.softmax(alphas[1], -1))
        tangent_arch_gradient(logits, teacher, alphas, g_parent, lam=lam, hessian=hessian)
        _sync(device)
        out[f"arch_grad_{name}_s"] = time.perf_counter() - t0
    return out


def epoch_case(method: str, options: dict[str, Any], threads: int | None, quick: bool,
               device: str = "cpu") -> dict[str, Any]:
    """Seconds of one search epoch of `method` on the digits defaults (`binas search` with no arguments);
    for DCP-NAS also a DARTS epoch in the same process, just before, for the ratio."""
    from binas import api
    from binas.config.schema import DataConfig, RunConfig, SearchConfig

    data = DataConfig(max_train_samples=QUICK_SAMPLES if quick else None)
    runtime = _runtime(threads, device)
    out: dict[str, Any] = {}
    if method == "dcp-nas":
        darts = api.build_strategy(RunConfig(data=data, search=SearchConfig(method="darts")), runtime)
        out["darts_epoch_same_process_s"] = _run_epoch(darts, runtime, SearchConfig().batch_size)[0]
        del darts
    cfg = RunConfig(data=data, search=SearchConfig(method=method, options=options))
    strategy = api.build_strategy(cfg, runtime)
    seconds, metrics = _run_epoch(strategy, runtime, cfg.search.batch_size)
    out |= {"seconds": seconds} | {k: metrics[k] for k in ("parent_seconds", "child_seconds") if k in metrics}
    if "darts_epoch_same_process_s" in out:
        out["ratio_to_darts_epoch"] = seconds / out["darts_epoch_same_process_s"]
    return out | _device_peak(runtime.device)


# -- (c) one epoch of every registered method ---------------------------------------------------------
def methods_config(method: str, options: dict[str, Any], quick: bool):
    """The common configuration of (c): the digits defaults, or a tiny one with `quick`."""
    from binas.config.schema import DataConfig, RunConfig, SearchConfig, SpaceConfig

    if not quick:
        return RunConfig(search=SearchConfig(method=method, options=options))
    q = QUICK_METHODS
    return RunConfig(data=DataConfig(image_size=q["image_size"], max_train_samples=q["max_train_samples"]),
                     space=SpaceConfig(**{k: q[k] for k in SPACE_KEYS if k in q}),
                     search=SearchConfig(method=method, batch_size=q["batch_size"], options=options))


def _describe_config(cfg) -> dict[str, Any]:
    from binas import api

    train = api.load_train_data(cfg)
    info = train.info if hasattr(train, "info") else train.dataset.info
    split = math.floor(cfg.data.train_portion * len(train))
    return {"data": cfg.data.name, "image_size": info.image_size, "train_samples": len(train),
            "search_train_split": split, "search_val_split": len(train) - split, "channels": cfg.space.channels,
            "layers": cfg.space.layers, "steps": cfg.space.steps, "multiplier": cfg.space.multiplier,
            "batch_size": cfg.search.batch_size, "binary": cfg.search.binary, "policy": cfg.space.policy}


def method_case(method: str, threads: int | None, quick: bool, device: str = "cpu") -> dict[str, Any]:
    """One search epoch of `method` on the (c) configuration after a one-batch warm-up (a round of
    `SAMPLED_EPOCHS` epochs, averaged, for the sampling methods), then a DARTS epoch in the same process for
    the ratio. `peak_rss_mb` is read before the DARTS epoch, so it is the method's own."""
    from binas import api

    runtime = _runtime(threads, device)
    cfg, _ = api.resolve_search_options(methods_config(method, METHOD_OPTIONS.get(method, {}), quick))
    batch = cfg.search.batch_size
    strategy = api.build_strategy(cfg, runtime)
    _reset_device_peak(runtime.device)
    _run_epoch(strategy, runtime, batch, max_batches=WARMUP_BATCHES)
    n = SAMPLED_EPOCHS if method in SAMPLING_METHODS and not quick else 1
    seconds = [_run_epoch(strategy, runtime, batch, epoch=e)[0] for e in range(n)]
    out: dict[str, Any] = {
        "seconds_per_epoch": statistics.mean(seconds), "all_seconds": seconds, "epochs_timed": n,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    } | _device_peak(runtime.device)
    out |= {"default_num_epochs": strategy.num_epochs(), "options": cfg.search.options}
    del strategy
    if method == "darts":
        out["darts_epoch_same_process_s"] = out["seconds_per_epoch"]
    else:
        search = dataclasses.replace(cfg.search, method="darts", options={})
        darts = api.build_strategy(dataclasses.replace(cfg, search=search), runtime)
        _run_epoch(darts, runtime, batch, max_batches=WARMUP_BATCHES)
        out["darts_epoch_same_process_s"] = _run_epoch(darts, runtime, batch)[0]
        del darts
    out["ratio_to_darts_epoch"] = out["seconds_per_epoch"] / out["darts_epoch_same_process_s"]
    out["default_search_s_estimate"] = out["default_num_epochs"] * out["seconds_per_epoch"]
    return out


# -- (d) scaling with cells, channels and batch size ------------------------------------------------
def scaling_points(base: dict[str, int], factors: dict[str, tuple[int, ...]]) -> list[dict[str, int]]:
    """The distinct points of a one-factor-at-a-time sweep around `base` (the base point once)."""
    points: list[dict[str, int]] = []
    for factor, values in factors.items():
        for value in values:
            point = base | {factor: value}
            if point not in points:
                points.append(point)
    return points


def scaling_case(method: str, options: dict[str, Any], point: dict[str, int], batches: int, threads: int | None,
                 device: str = "cpu", warmup: int = WARMUP_BATCHES) -> dict[str, Any]:
    """`batches` batches per split of `method` at `point` after `warmup` batches, extrapolated to an epoch
    of the digits search split at that batch size (seconds per batch x split size / batch)."""
    from binas import api
    from binas.config.schema import DataConfig, RunConfig, SearchConfig, SpaceConfig

    b = point["batch_size"]
    full = len(api.load_train_data(RunConfig(data=DataConfig(image_size=point["image_size"]))))
    if 2 * batches * b > full:
        raise ValueError(f"{batches} batches of {b} per split need {2 * batches * b} samples; digits has {full}")
    runtime = _runtime(threads, device)
    cfg = RunConfig(data=DataConfig(image_size=point["image_size"], max_train_samples=2 * batches * b),
                    space=SpaceConfig(**{k: point[k] for k in SPACE_KEYS if k in point}),
                    search=SearchConfig(method=method, batch_size=b, options=options))
    strategy = api.build_strategy(cfg, runtime)  # both splits: exactly `batches` full batches
    _reset_device_peak(runtime.device)
    if warmup:
        _run_epoch(strategy, runtime, b, max_batches=warmup)
    seconds = _run_epoch(strategy, runtime, b)[0]
    epoch_batches = math.floor(cfg.data.train_portion * full) / b
    return {"seconds_timed": seconds, "batches_timed": batches, "seconds_per_batch": seconds / batches,
            "epoch_batches": epoch_batches, "seconds_per_epoch": seconds / batches * epoch_batches,
            "peak_rss_mb": round(_peak_rss_mb(), 1)} | _device_peak(runtime.device)


def _isolated(fn, *args) -> dict[str, Any]:
    result = dict(fn(*args))
    result.setdefault("peak_rss_mb", round(_peak_rss_mb(), 1))
    return result


def run_case(fn, *args) -> dict[str, Any]:
    """Run one case in a fresh spawned process (its own peak RSS, no warm caches from other cases)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_isolated, fn, *args).result()


def run_in_process(fn, *args) -> dict[str, Any]:
    """Run one case in this process (fast; its peak RSS is the running maximum of the whole run)."""
    return _isolated(fn, *args)


def _machine(args: argparse.Namespace, load_before: tuple[float, ...]) -> dict[str, Any]:
    import torch

    from binas.engine.runtime import resolve_device

    device = resolve_device(args.device)
    return {"cpus": os.cpu_count(), "threads": args.threads or torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "device": str(device),
            "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()}


def _progress(part: str, name: str, started: float, result: dict[str, Any]) -> None:
    """One line per finished case on stderr (a full run takes minutes)."""
    seconds = result.get("seconds_per_epoch", result.get("seconds"))
    print(f"  ({part}) {name}: {seconds:.2f} s, peak {result['peak_rss_mb']:.0f} MB; case took "
          f"{time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)


def part_ab(args: argparse.Namespace, parts: set[str], run) -> dict[str, Any]:
    """(a) and (b), under their original keys (the top-level `machine`, `quick`, `repeats` describe them)."""
    repeats = 1 if args.quick else 2
    load_before = os.getloadavg()
    result: dict[str, Any] = {}
    if "a" in parts:
        dev = args.device
        result["step_cifar_search_size"] = {
            "darts": run(step_case, "darts", {}, args.threads, repeats, dev),
            "pc-darts": run(step_case, "pc-darts", {"partial_channels": PC_DARTS_K, "arch_warmup_epochs": 0},
                            args.threads, repeats, dev),
            # (the schedule's length does not matter here: every step runs at epoch 0, at the initial lr)
            "dcp-nas-ggn": run(step_case, "dcp-nas", {"hessian": "ggn"}, args.threads, repeats, dev),
            "dcp-nas-exact": run(step_case, "dcp-nas", {"hessian": "exact"}, args.threads, repeats, dev),
        }
        result["reference_original_code_s_per_step"] = {"darts": ORIGINAL_DARTS_STEP_S,
                                                        "pc-darts": ORIGINAL_PC_DARTS_STEP_S}
    if "b" in parts:
        epochs = {
            "darts": run(epoch_case, "darts", {}, args.threads, args.quick, args.device),
            "dcp-nas-ggn": run(epoch_case, "dcp-nas", {"hessian": "ggn"}, args.threads, args.quick, args.device),
            "dcp-nas-exact": run(epoch_case, "dcp-nas", {"hessian": "exact"}, args.threads, args.quick, args.device),
        }
        result["epoch_digits_defaults"] = epochs
        result["epoch_ratio_to_darts"] = {k: v.get("ratio_to_darts_epoch", 1.0) for k, v in epochs.items()}
    machine = _machine(args, load_before) | {"parts": sorted(parts & {"a", "b"})}
    return {"machine": machine, "quick": args.quick, "repeats": repeats} | result


def part_c(args: argparse.Namespace, run, isolated: bool) -> dict[str, Any]:
    """(c): one epoch of every registered method on one common configuration."""
    from binas.strategies import STRATEGIES

    load_before = os.getloadavg()
    results = {}
    for method in STRATEGIES.names():
        started = time.perf_counter()
        results[method] = run(method_case, method, args.threads, args.quick, args.device)
        results[method]["epoch_is"] = EPOCH_MEANING.get(method, "see the strategy's docstring")
        _progress("c", method, started, results[method])
    return {
        "machine": _machine(args, load_before), "quick": args.quick, "isolated": isolated,
        "config": _describe_config(methods_config("darts", {}, args.quick)), "warmup_batches": WARMUP_BATCHES,
        "how": (f"one engine epoch (`run_epoch`) after a {WARMUP_BATCHES}-batch warm-up; "
                f"{'1' if args.quick else SAMPLED_EPOCHS} epochs averaged for {', '.join(SAMPLING_METHODS)} "
                "(one sampled architecture each); ratio_to_darts_epoch divides by a DARTS epoch of the same "
                "configuration timed in the same process after the method; peak_rss_mb is read before that "
                "DARTS epoch; default_search_s_estimate = default_num_epochs x seconds_per_epoch"),
        "results": results,
    }


def part_d(args: argparse.Namespace, run, isolated: bool) -> dict[str, Any]:
    """(d): darts, pc-darts and dcp-nas (ggn) at every point of the one-factor-at-a-time sweep."""
    base = QUICK_SCALING_BASE if args.quick else SCALING_BASE
    factors = QUICK_SCALING_FACTORS if args.quick else SCALING_FACTORS
    batches = args.scaling_batches or (QUICK_SCALING_BATCHES if args.quick else SCALING_BATCHES)
    warmup = 0 if args.quick else WARMUP_BATCHES
    load_before = os.getloadavg()
    measured = []
    for point in scaling_points(base, factors):
        row = {}
        for name, (method, options) in SCALING_METHODS.items():
            started = time.perf_counter()
            row[name] = run(scaling_case, method, options, point, batches, args.threads, args.device, warmup)
            _progress("d", f"{name} {point}", started, row[name])
        for r in row.values():
            r["ratio_to_darts"] = r["seconds_per_epoch"] / row["darts"]["seconds_per_epoch"]
        measured.append((point, row))
    tables = {factor: [{"value": value, "base": value == base[factor], "point": p, "results": row}
                       for value in values for p, row in measured if p == base | {factor: value}]
              for factor, values in factors.items()}
    return {
        "machine": _machine(args, load_before), "quick": args.quick, "isolated": isolated,
        "methods": {name: {"method": m, "options": o} for name, (m, o) in SCALING_METHODS.items()},
        "base": base, "factors": {k: list(v) for k, v in factors.items()}, "batches_timed": batches,
        "warmup_batches": warmup,
        "how": (f"{batches} batches per split timed after a {warmup}-batch warm-up (the data truncated to "
                f"exactly {batches} full batches per split), extrapolated: seconds_per_epoch = seconds_per_batch x "
                "epoch_batches, epoch_batches = digits search split (half the training set) / batch size; "
                "ratio_to_darts divides by the darts entry of the same point (another process, run just before); "
                "the base point is measured once and appears in every factor's table"),
        "tables": tables,
    }


def merge_results(existing: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The results file after a run: the keys this run wrote replace the old ones, the rest are kept."""
    return existing | new


def _load_existing(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SystemExit(f"{path} is not valid JSON ({e}); move it away or pass another --out") from None
    if not isinstance(data, dict):
        raise SystemExit(f"{path} does not hold a JSON object; move it away or pass another --out")
    return data


def parse_parts(text: str) -> set[str]:
    parts = {p.strip().lower() for p in text.split(",") if p.strip()}
    if not parts or not parts <= set(PARTS):
        raise argparse.ArgumentTypeError(f"--parts takes a comma-separated subset of {','.join(PARTS)}, got {text!r}")
    return parts


def print_ab(result: dict[str, Any], parts: set[str]) -> None:
    m = result["machine"]
    print(f"threads {m['threads']}, load before {m['loadavg_before'][0]:.2f}, after {m['loadavg_after'][0]:.2f}")
    if "a" in parts:
        steps = result["step_cifar_search_size"]
        print(f"(a) one step, C={CIFAR_CHANNELS}, {CIFAR_LAYERS} cells, batch {CIFAR_BATCH}, {CIFAR_SIZE}x{CIFAR_SIZE}")
        print(f"{'case':<16}{'s/step':>10}{'peak MB':>10}  notes")
        for name, r in steps.items():
            if name in ("darts", "pc-darts"):
                note = f"original code {result['reference_original_code_s_per_step'][name]} s"
            else:
                note = (f"parent {r['parent_seconds']:.2f} s + child {r['child_seconds']:.2f} s; "
                        f"{r['ratio_to_darts_step']:.2f}x (child {r['child_ratio_to_darts_step']:.2f}x) a DARTS step "
                        f"timed alongside ({r['darts_step_same_process_s']:.2f} s)")
                if "ggn_product_share_of_child_step" in r:
                    note += (f"; GGN product {100 * r['ggn_product_share_of_child_step']:.0f}% of the child step, "
                             f"exact HVP {r['exact_product_over_ggn_product']:.2f}x the GGN product, "
                             f"on plain autograd: GGN {r['ggn_product_plain_autograd_ratio']:.2f}x, "
                             f"exact {r['exact_product_plain_autograd_ratio']:.2f}x")
            print(f"{name:<16}{r['seconds']:>10.2f}{r['peak_rss_mb']:>10.0f}  {note}")
    if "b" in parts:
        ratios = result["epoch_ratio_to_darts"]
        print("(b) one epoch on the digits defaults (ratio: to a DARTS epoch timed in the same process)")
        print(f"{'case':<16}{'s/epoch':>10}{'ratio':>8}{'peak MB':>10}")
        for name, r in result["epoch_digits_defaults"].items():
            print(f"{name:<16}{r['seconds']:>10.2f}{ratios[name]:>8.2f}{r['peak_rss_mb']:>10.0f}")


def _memory_cell(r: dict[str, Any]) -> str:
    return f"{r['peak_rss_mb']:.0f}" + (f"/{r['cuda_peak_mb']:.0f}" if "cuda_peak_mb" in r else "")


def print_c(part: dict[str, Any]) -> None:
    c, m = part["config"], part["machine"]
    print(f"(c) one search epoch of every method: {c['data']} {c['image_size']}x{c['image_size']} "
          f"({c['search_train_split']}/{c['search_val_split']} split), C={c['channels']}, {c['layers']} cells, "
          f"batch {c['batch_size']}; ratio: to a DARTS epoch timed in the same process; whole search: default "
          f"epochs x s/epoch [threads {m['threads']}, load {m['loadavg_before'][0]:.2f} -> "
          f"{m['loadavg_after'][0]:.2f}]")
    mem = "peak MB" + ("/CUDA" if any("cuda_peak_mb" in r for r in part["results"].values()) else "")
    print(f"{'method':<10}{'s/epoch':>9}{'ratio':>7}{mem:>13}{'epochs':>8}{'search s':>10}{'search min':>11}"
          "  one epoch is")
    for name, r in part["results"].items():
        try:
            short = EPOCH_SHORT.get(name, "").format(**r["options"])
        except (KeyError, IndexError):  # an option renamed since
            short = EPOCH_SHORT.get(name, "")
        print(f"{name:<10}{r['seconds_per_epoch']:>9.2f}{r['ratio_to_darts_epoch']:>7.2f}{_memory_cell(r):>13}"
              f"{r['default_num_epochs']:>8}{r['default_search_s_estimate']:>10.0f}"
              f"{r['default_search_s_estimate'] / 60:>11.1f}  {short}")


def print_d(part: dict[str, Any]) -> None:
    m, base = part["machine"], part["base"]
    names = list(part["methods"])
    print(f"(d) scaling, one factor at a time from C={base['channels']}, {base['layers']} cells, batch "
          f"{base['batch_size']}, {base['image_size']}x{base['image_size']}: s/epoch extrapolated from "
          f"{part['batches_timed']} timed batches, ratio to DARTS at the same point, peak MB "
          f"[threads {m['threads']}, load {m['loadavg_before'][0]:.2f} -> {m['loadavg_after'][0]:.2f}]")
    header = f"{'factor':<11}{'value':>6}"
    for name in names:
        header += f" | {name + ' s/ep':>16}{'ratio':>6}{'MB':>7}"
    print(header)
    for factor, rows in part["tables"].items():
        for row in rows:
            line = f"{factor:<11}{row['value']:>6}"
            for name in names:
                r = row["results"][name]
                line += f" | {r['seconds_per_epoch']:>16.2f}{r['ratio_to_darts']:>6.2f}{_memory_cell(r):>7}"
            print(line + ("  (base)" if row["base"] else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=parse_parts, default=set(PARTS),
                        help="comma-separated parts to run, of a,b,c,d (default: all); the others keep their "
                             "results in --out")
    parser.add_argument("--quick", action="store_true",
                        help="(a) 1 timed repeat, (b) 256 digits samples, (c) and (d) tiny sizes, 1 epoch / batch; "
                             "implies --isolation none unless given")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="device of every case: cpu (default), cuda, cuda:<i>")
    parser.add_argument("--isolation", choices=("auto", "process", "none"), default="auto",
                        help="process: every case in a fresh spawned process (its own peak RSS); none: all in this "
                             "process (peak RSS is a running maximum); auto: none with --quick, else process")
    parser.add_argument("--scaling-batches", type=int, default=None,
                        help=f"(d) timed batches per point (default {SCALING_BATCHES}, --quick "
                             f"{QUICK_SCALING_BATCHES})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file (merged into)")
    args = parser.parse_args(argv)
    parts: set[str] = args.parts
    isolation = args.isolation if args.isolation != "auto" else ("none" if args.quick else "process")
    run = run_case if isolation == "process" else run_in_process
    existing = _load_existing(args.out)
    new: dict[str, Any] = {}
    if parts & {"a", "b"}:
        new |= part_ab(args, parts, run)
    if "c" in parts:
        new["methods"] = part_c(args, run, isolation == "process")
    if "d" in parts:
        new["scaling"] = part_d(args, run, isolation == "process")
    result = merge_results(existing, new)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if parts & {"a", "b"}:
        print_ab(result, parts)
    if "c" in parts:
        print_c(result["methods"])
    if "d" in parts:
        print_d(result["scaling"])
    print(f"written to {args.out} (parts {','.join(sorted(parts))}; the others kept)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
