"""Search cost on this machine (a script, not a test): seconds per step / epoch and peak memory.

(a) One first-order DARTS step (alpha step + weight step) on the DARTS CIFAR-10 search supernet
    (C=16, 8 cells, batch 32, 32x32 inputs, 10 classes), the same with PC-DARTS (K=4), both real, and one
    DCP-NAS step pair (a Parent step + a Child step) on that supernet with `ggn` and `exact`, with the share
    of the Child step spent in the curvature product. The strategies' own `run_epoch` runs on a split of
    exactly one batch, so the step code is theirs, not a re-implementation.
(b) One epoch of first-order DARTS, DCP-NAS (`ggn`) and DCP-NAS (`exact`) on the digits defaults, with
    the ratios to the DARTS epoch.

Each case runs in a fresh process, so its peak RSS is its own. The machine is shared, so every DCP-NAS
ratio divides by a DARTS step / epoch timed in the same process next to it, not in another process at
another time. Run it on a quiet machine anyway (`uptime`).

    python benchmarks/search_cost.py [--quick] [--threads N] [--out benchmarks/results/search_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).parent / "results" / "search_cost.json"
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


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _runtime(threads: int | None):
    from binas.engine.runtime import setup_runtime

    return setup_runtime("cpu", 0, num_threads=threads)


def _run_epoch(strategy, runtime, batch_size: int, epoch: int = 0) -> tuple[float, dict[str, float]]:
    from binas.engine.loop import EpochLoop
    from binas.engine.runtime import derive_seed, seed_everything

    seed_everything(derive_seed(0, "search-epoch", epoch))
    loop = EpochLoop(runtime, epoch, batch_size, augment=False, progress=False)
    t0 = time.perf_counter()
    metrics = strategy.run_epoch(epoch, loop)
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


def step_case(method: str, options: dict[str, Any], threads: int | None, repeats: int) -> dict[str, Any]:
    """Seconds of one step of `method` (one batch per split) at the DARTS CIFAR-10 search size.

    For DCP-NAS a DARTS step is timed in the same process between its steps (the machine is shared, so
    only interleaved times give a trustworthy ratio), and, for `ggn`, the Child's α-gradient alone with
    no curvature product, with the GGN product and with the exact HVP.
    """
    runtime = _runtime(threads)
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
        if method == "dcp-nas" and options.get("hessian", "ggn") == "ggn":
            row |= _curvature_times(strategy, train)
            row["ggn_product_share_of_child_step"] = (row["arch_grad_ggn_s"] - row["arch_grad_plain_s"]) / (
                row["child_seconds"])
            row["exact_product_over_ggn_product"] = (row["arch_grad_exact_s"] - row["arch_grad_plain_s"]) / (
                row["arch_grad_ggn_s"] - row["arch_grad_plain_s"])
        rows.append(row)
    out: dict[str, Any] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    return out | {"all_seconds": [r["seconds"] for r in rows]}


def _curvature_times(strategy, data) -> dict[str, float]:
    """Child forward + α-gradient on one batch: plain (λ = 0), with the GGN product, with the exact HVP."""
    import torch

    from binas.objectives.tangent import tangent_arch_gradient

    x = torch.stack([data[i][0] for i in range(len(data))]).to(memory_format=torch.channels_last)
    alphas = [a.detach().requires_grad_(True) for a in strategy.alphas(strategy.child_arch)]
    with torch.no_grad():
        teacher = strategy.parent(x, **{k: torch.softmax(a, -1) for k, a in zip(("normal", "reduce"), alphas)})
    g_parent = [torch.zeros_like(a) for a in alphas]
    out = {}
    cases = (("plain", 0.0, "ggn"), ("ggn", TANGENT_WEIGHT, "ggn"), ("exact", TANGENT_WEIGHT, "exact"))
    for name, lam, hessian in cases:
        t0 = time.perf_counter()
        logits = strategy.child(x, normal=torch.softmax(alphas[0], -1), reduce=torch.softmax(alphas[1], -1))
        tangent_arch_gradient(logits, teacher, alphas, g_parent, lam=lam, hessian=hessian)
        out[f"arch_grad_{name}_s"] = time.perf_counter() - t0
    return out


def epoch_case(method: str, options: dict[str, Any], threads: int | None, quick: bool) -> dict[str, Any]:
    """Seconds of one search epoch of `method` on the digits defaults (`binas search` with no arguments);
    for DCP-NAS also a DARTS epoch in the same process, just before, for the ratio."""
    from binas import api
    from binas.config.schema import DataConfig, RunConfig, SearchConfig

    data = DataConfig(max_train_samples=QUICK_SAMPLES if quick else None)
    runtime = _runtime(threads)
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
    return out


def _isolated(fn, *args) -> dict[str, Any]:
    result = fn(*args)
    return result | {"peak_rss_mb": round(_peak_rss_mb(), 1)}


def run_case(fn, *args) -> dict[str, Any]:
    """Run one case in a fresh spawned process (its own peak RSS, no warm caches from other cases)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_isolated, fn, *args).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 timed repeat, 256 digits samples")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 2
    load_before = os.getloadavg()
    steps = {
        "darts": run_case(step_case, "darts", {}, args.threads, repeats),
        "pc-darts": run_case(step_case, "pc-darts", {"partial_channels": PC_DARTS_K, "arch_warmup_epochs": 0},
                             args.threads, repeats),
        "dcp-nas-ggn": run_case(step_case, "dcp-nas", {"hessian": "ggn", "search_epochs": None}, args.threads,
                                repeats),
        "dcp-nas-exact": run_case(step_case, "dcp-nas", {"hessian": "exact", "search_epochs": None}, args.threads,
                                  repeats),
    }
    epochs = {
        "darts": run_case(epoch_case, "darts", {}, args.threads, args.quick),
        "dcp-nas-ggn": run_case(epoch_case, "dcp-nas", {"hessian": "ggn"}, args.threads, args.quick),
        "dcp-nas-exact": run_case(epoch_case, "dcp-nas", {"hessian": "exact"}, args.threads, args.quick),
    }
    ratios = {k: v.get("ratio_to_darts_epoch", 1.0) for k, v in epochs.items()}
    import torch

    result = {
        "machine": {"cpus": os.cpu_count(), "threads": args.threads or torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "quick": args.quick, "repeats": repeats,
        "reference_original_code_s_per_step": {"darts": ORIGINAL_DARTS_STEP_S, "pc-darts": ORIGINAL_PC_DARTS_STEP_S},
        "step_cifar_search_size": steps, "epoch_digits_defaults": epochs, "epoch_ratio_to_darts": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"threads {result['machine']['threads']}, load before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
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
                         f"exact HVP {r['exact_product_over_ggn_product']:.2f}x the GGN product")
        print(f"{name:<16}{r['seconds']:>10.2f}{r['peak_rss_mb']:>10.0f}  {note}")
    print("(b) one epoch on the digits defaults (ratio: to a DARTS epoch timed in the same process)")
    print(f"{'case':<16}{'s/epoch':>10}{'ratio':>8}{'peak MB':>10}")
    for name, r in epochs.items():
        print(f"{name:<16}{r['seconds']:>10.2f}{ratios[name]:>8.2f}{r['peak_rss_mb']:>10.0f}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
