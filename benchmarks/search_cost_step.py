"""(a) One search step at the DARTS CIFAR-10 search size and the share of the curvature product;
(b) one digits epoch of DARTS against DCP-NAS.

(a) One first-order DARTS step (alpha step + weight step) on the supernet of the `darts_cifar10_search`
    preset (its channels and cells, CIFAR-10's 32x32 inputs and 10 classes, batch `STEP_BATCH`), the same
    with PC-DARTS at the options of the `pcdarts_cifar10_search` preset (K), both real, and one DCP-NAS step
    pair (a Parent step + a Child step, the Child 1-bit with the library's default policy) on that supernet
    with `ggn` and `exact`, with the share of the Child step spent in the curvature product (and both products
    on plain autograd, without `fast_double_backward`, for comparison). The strategies' own `run_epoch` runs
    on a split of exactly one batch, so the step code is theirs, not a re-implementation.
(b) One epoch of first-order DARTS, DCP-NAS (`ggn`) and DCP-NAS (`exact`) on the digits defaults (`binas
    search` with no arguments), with the ratios to a DARTS epoch timed in the same process.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from search_cost_common import device_peak, machine, make_runtime, peak_rss_mb, preset_config, run_epoch, sync

from binas.config.schema import DataConfig, RunConfig, SearchConfig, SpaceConfig
from binas.data import make_synthetic, split_train_val
from binas.data.cifar import CIFAR10_IMAGE_SIZE, CIFAR10_NUM_CLASSES
from binas.engine.runtime import preferred_memory_format
from binas.objectives.tangent import child_forward_context, tangent_arch_gradient
from binas.strategies import STRATEGIES, SearchContext, resolve_method_options
from binas.workflows.search import build_strategy

#: (a) The DARTS CIFAR-10 search supernet, and the PC-DARTS options, of these shipped presets.
CIFAR_PRESET, PC_DARTS_PRESET = "darts_cifar10_search", "pcdarts_cifar10_search"
#: (a) The batch of a step: the one the reference times below were taken at (the preset's is larger).
STEP_BATCH = 32
#: (a) Reference times on this 2-core machine for the original code (from the issue text).
ORIGINAL_DARTS_STEP_S, ORIGINAL_PC_DARTS_STEP_S = 9.1, 3.3
#: (b) Digits samples in --quick mode (2 batches of 64 per split).
QUICK_SAMPLES = 256
#: Metrics of a DCP-NAS epoch reported with its time.
ROUND_SECONDS = ("parent_seconds", "child_seconds")


def cifar_search() -> RunConfig:
    """(a)'s setting: the DARTS CIFAR-10 search preset at batch `STEP_BATCH`; its space with the library's
    default 1-bit policy (the preset's `real` would make DCP-NAS's Child real)."""
    cfg = preset_config(CIFAR_PRESET)
    space = dataclasses.replace(cfg.space, policy=SpaceConfig().policy)
    return dataclasses.replace(cfg, space=space, search=dataclasses.replace(cfg.search, batch_size=STEP_BATCH))


def pc_darts_options() -> dict[str, Any]:
    """PC-DARTS at its CIFAR-10 preset's options, timed with alpha steps (no warm-up epochs)."""
    return preset_config(PC_DARTS_PRESET).search.options | {"arch_warmup_epochs": 0}


def _cifar_strategy(method: str, options: dict[str, Any], runtime):
    """`method` on one batch per split of synthetic CIFAR-10-sized data, on (a)'s supernet."""
    cfg = cifar_search()
    search = dataclasses.replace(cfg.search, method=method, epochs=1, binary=None, options=options)  # real
    cfg = resolve_method_options(dataclasses.replace(cfg, search=search))
    size = cfg.data.image_size or CIFAR10_IMAGE_SIZE
    data = make_synthetic(2 * cfg.search.batch_size, num_classes=CIFAR10_NUM_CLASSES, image_size=size)
    train, val = split_train_val(data, cfg.data.train_portion, seed=cfg.seed)
    ctx = SearchContext(train, val, data.info, cfg.space, cfg.search, runtime)
    return STRATEGIES.get(method)(ctx, cfg.search.options), train


def step_case(
    method: str, options: dict[str, Any], threads: int | None, repeats: int, device: str = "cpu"
) -> dict[str, Any]:
    """Seconds of one step of `method` (one batch per split) at the DARTS CIFAR-10 search size.

    For DCP-NAS a DARTS step is timed in the same process between its steps (the machine is shared, so
    only interleaved times give a trustworthy ratio), and, for `ggn`, the Child's α-gradient alone with
    no curvature product, with the GGN product and with the exact HVP. `peak_rss_mb` covers the warm-up and
    the timed steps (the DARTS steps in the same process included), not those diagnostics.
    """
    runtime = make_runtime(threads, device)
    batch = cifar_search().search.batch_size
    strategy, train = _cifar_strategy(method, options, runtime)
    baseline = _cifar_strategy("darts", {}, runtime)[0] if method == "dcp-nas" else None
    for s in (strategy, baseline):
        if s is not None:
            run_epoch(s, runtime, batch)  # warm-up
    rows: list[dict[str, float]] = []
    for _ in range(repeats):
        seconds, metrics = run_epoch(strategy, runtime, batch)
        row = {"seconds": seconds} | {k: metrics[k] for k in ROUND_SECONDS if k in metrics}
        if baseline is not None:
            darts = row["darts_step_same_process_s"] = run_epoch(baseline, runtime, batch)[0]
            row["ratio_to_darts_step"] = seconds / darts
            row["child_ratio_to_darts_step"] = row["child_seconds"] / darts
        rows.append(row)
    # Read before the diagnostics below, which also run the products on plain autograd (more memory).
    peak = {"peak_rss_mb": round(peak_rss_mb(), 1)}
    if method == "dcp-nas" and strategy.options.hessian == "ggn":
        for row in rows:
            row |= _curvature_shares(row, _curvature_times(strategy, train))
    out: dict[str, Any] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    return out | {"all_seconds": [r["seconds"] for r in rows]} | peak | device_peak(runtime.device)


def _curvature_shares(row: dict[str, float], t: dict[str, float]) -> dict[str, float]:
    """The curvature products' cost: each α-gradient time less the plain one (no product)."""
    ggn, exact = t["arch_grad_ggn_s"] - t["arch_grad_plain_s"], t["arch_grad_exact_s"] - t["arch_grad_plain_s"]
    return t | {
        "ggn_product_share_of_child_step": ggn / row["child_seconds"],
        "exact_product_over_ggn_product": exact / ggn,
        # what `fast_double_backward` saves
        "ggn_product_plain_autograd_ratio": (t["arch_grad_ggn_plain_autograd_s"] - t["arch_grad_plain_s"]) / ggn,
        "exact_product_plain_autograd_ratio": (t["arch_grad_exact_plain_autograd_s"] - t["arch_grad_plain_s"]) / exact,
    }


def _curvature_times(strategy, data) -> dict[str, float]:
    """Child forward + α-gradient on one batch: plain (λ = 0), with the GGN product and with the exact HVP,
    each as the search runs it (`child_forward_context`: `fast_double_backward`, the strategy's λ on batch
    means) and on plain autograd."""
    device, opts = strategy.device, strategy.options
    x = torch.stack([data[i][0] for i in range(len(data))]).to(device, memory_format=preferred_memory_format(device))
    alphas = [a.detach().requires_grad_(True) for a in strategy.child.alphas()]
    with torch.no_grad():
        teacher = strategy.parent.net(x, **{k: torch.softmax(a, -1) for k, a in zip(("normal", "reduce"), alphas)})
    g_parent = [torch.zeros_like(a) for a in alphas]
    w = opts.lam_on_batch_means(strategy.ctx.search.batch_size)
    cases = (("plain", 0.0, "ggn", True), ("ggn", w, "ggn", True), ("ggn_plain_autograd", w, "ggn", False))
    cases += (("exact", w, "exact", True), ("exact_plain_autograd", w, "exact", False))
    out = {}
    for name, lam, hessian, as_searched in cases:
        sync(device)
        t0 = time.perf_counter()
        with child_forward_context(strategy.child.net, lam=lam, hessian=hessian) if as_searched else nullcontext():
            logits = strategy.child.net(x, normal=torch.softmax(alphas[0], -1), reduce=torch.softmax(alphas[1], -1))
        tangent_arch_gradient(logits, teacher, alphas, g_parent, lam=lam, hessian=hessian, distance=opts.distance)
        sync(device)
        out[f"arch_grad_{name}_s"] = time.perf_counter() - t0
    return out


def epoch_case(
    method: str, options: dict[str, Any], threads: int | None, quick: bool, device: str = "cpu"
) -> dict[str, Any]:
    """Seconds of one search epoch of `method` on the digits defaults (`binas search` with no arguments);
    for DCP-NAS also a DARTS epoch in the same process, just before, for the ratio."""
    data = DataConfig(max_train_samples=QUICK_SAMPLES if quick else None)
    runtime = make_runtime(threads, device)
    out: dict[str, Any] = {}
    if method == "dcp-nas":
        darts = build_strategy(RunConfig(data=data, search=SearchConfig(method="darts")), runtime)
        out["darts_epoch_same_process_s"] = run_epoch(darts, runtime, SearchConfig().batch_size)[0]
        del darts
    cfg = RunConfig(data=data, search=SearchConfig(method=method, options=options))
    strategy = build_strategy(cfg, runtime)
    seconds, metrics = run_epoch(strategy, runtime, cfg.search.batch_size)
    out |= {"seconds": seconds} | {k: metrics[k] for k in ROUND_SECONDS if k in metrics}
    if "darts_epoch_same_process_s" in out:
        out["ratio_to_darts_epoch"] = seconds / out["darts_epoch_same_process_s"]
    return out | device_peak(runtime.device)


def part_ab(args: argparse.Namespace, parts: set[str], run: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """(a) and (b), under their original keys (the top-level `machine`, `quick`, `repeats` describe them)."""
    repeats = 1 if args.quick else 2
    load_before = os.getloadavg()
    result: dict[str, Any] = {}
    step = (args.threads, repeats, args.device)
    if "a" in parts:
        result["step_cifar_search_size"] = {
            "darts": run(step_case, "darts", {}, *step),
            "pc-darts": run(step_case, "pc-darts", pc_darts_options(), *step),
            # (the schedule's length does not matter here: every step runs at epoch 0, at the initial lr)
            "dcp-nas-ggn": run(step_case, "dcp-nas", {"hessian": "ggn"}, *step),
            "dcp-nas-exact": run(step_case, "dcp-nas", {"hessian": "exact"}, *step),
        }
        reference = {"darts": ORIGINAL_DARTS_STEP_S, "pc-darts": ORIGINAL_PC_DARTS_STEP_S}
        result["reference_original_code_s_per_step"] = reference
    if "b" in parts:
        epoch = (args.threads, args.quick, args.device)
        epochs = {
            "darts": run(epoch_case, "darts", {}, *epoch),
            "dcp-nas-ggn": run(epoch_case, "dcp-nas", {"hessian": "ggn"}, *epoch),
            "dcp-nas-exact": run(epoch_case, "dcp-nas", {"hessian": "exact"}, *epoch),
        }
        result["epoch_digits_defaults"] = epochs
        result["epoch_ratio_to_darts"] = {k: v.get("ratio_to_darts_epoch", 1.0) for k, v in epochs.items()}
    info = machine(args, load_before) | {"parts": sorted(parts & {"a", "b"})}
    return {"machine": info, "quick": args.quick, "repeats": repeats} | result


def _step_note(name: str, r: dict[str, Any], reference: dict[str, float]) -> str:
    if name in reference:
        return f"original code {reference[name]} s"
    note = (
        f"parent {r['parent_seconds']:.2f} s + child {r['child_seconds']:.2f} s; {r['ratio_to_darts_step']:.2f}x "
        f"(child {r['child_ratio_to_darts_step']:.2f}x) a DARTS step timed alongside "
        f"({r['darts_step_same_process_s']:.2f} s)"
    )
    if "ggn_product_share_of_child_step" in r:
        note += (
            f"; GGN product {100 * r['ggn_product_share_of_child_step']:.0f}% of the child step, "
            f"exact HVP {r['exact_product_over_ggn_product']:.2f}x the GGN product, "
            f"on plain autograd: GGN {r['ggn_product_plain_autograd_ratio']:.2f}x, "
            f"exact {r['exact_product_plain_autograd_ratio']:.2f}x"
        )
    return note


def print_ab(result: dict[str, Any], parts: set[str]) -> None:
    m = result["machine"]
    print(f"threads {m['threads']}, load before {m['loadavg_before'][0]:.2f}, after {m['loadavg_after'][0]:.2f}")
    if "a" in parts:
        cfg = cifar_search()
        size = cfg.data.image_size or CIFAR10_IMAGE_SIZE
        shape = f"C={cfg.space.channels}, {cfg.space.layers} cells, batch {cfg.search.batch_size}, {size}x{size}"
        print(f"(a) one step, {shape}")
        print(f"{'case':<16}{'s/step':>10}{'peak MB':>10}  notes")
        reference = result.get("reference_original_code_s_per_step", {})
        for name, r in result["step_cifar_search_size"].items():
            print(f"{name:<16}{r['seconds']:>10.2f}{r['peak_rss_mb']:>10.0f}  {_step_note(name, r, reference)}")
    if "b" in parts:
        ratios = result["epoch_ratio_to_darts"]
        print("(b) one epoch on the digits defaults (ratio: to a DARTS epoch timed in the same process)")
        print(f"{'case':<16}{'s/epoch':>10}{'ratio':>8}{'peak MB':>10}")
        for name, r in result["epoch_digits_defaults"].items():
            print(f"{name:<16}{r['seconds']:>10.2f}{ratios[name]:>8.2f}{r['peak_rss_mb']:>10.0f}")
