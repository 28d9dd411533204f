"""(c) One search epoch of every registered method (`STRATEGIES.names()`) on the digits defaults.

The configuration is `binas search --method M` with no other arguments (the library's `RunConfig`
defaults; `--quick`: the `digits_quick` preset made tinier). Each method runs one engine epoch after a
one-batch warm-up, with its peak memory, its ratio to a DARTS epoch timed in the same process, what one
engine epoch means for the method, and the epochs of its default schedule (so the whole default search costs
about epochs x s/epoch). CP-NAS, BNAS and DDPNAS sample one architecture per epoch, whose cost depends on the
ops drawn, so they are timed over a whole round (one epoch per DARTS op: every op once per edge) and averaged.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from search_cost_common import (
    WARMUP_BATCHES,
    data_info,
    device_peak,
    machine,
    make_runtime,
    memory_cell,
    peak_rss_mb,
    preset_config,
    progress,
    reset_device_peak,
    run_epoch,
)

from binas.config.io import to_dict
from binas.config.schema import RunConfig, SearchConfig
from binas.space.primitives import PRIMITIVES
from binas.strategies import STRATEGIES, resolve_method_options
from binas.strategies.darts import PC_DARTS_WARMUP_FRACTION
from binas.workflows.search import build_strategy

#: Methods with one sampled architecture per engine epoch; their epochs differ with the ops drawn, so they
#: are averaged over a whole round: one epoch per op, every DARTS op once per edge.
SAMPLING_METHODS = ("cp-nas", "bnas", "ddpnas")
SAMPLED_EPOCHS = len(PRIMITIVES)
#: Options that differ from the method's defaults: PC-DARTS is timed on an epoch with alpha steps (its
#: default alpha warm-up epochs only train the weights and cost less).
METHOD_OPTIONS: dict[str, dict[str, Any]] = {"pc-darts": {"arch_warmup_epochs": 0}}
#: --quick: the `digits_quick` preset's data and supernet with cells of 1 node, 16 samples per split and
#: batch 16 (1 batch per split).
QUICK_PRESET = "digits_quick"
QUICK_SAMPLES, QUICK_NODES, QUICK_BATCH = 32, 1, 16

_OPS = len(PRIMITIVES)
_PRUNE_EPOCHS = sum(range(2, _OPS + 1))  # one op per edge dropped per stage, from all ops down to 2
#: What one engine epoch (`run_epoch`) is for each method (module docstrings of binas.strategies.*).
EPOCH_MEANING = {
    "darts": "one pass over the search training split: per batch a first-order alpha step on a validation "
    "batch and a weight step on a training batch",
    "pc-darts": "as darts, on the partial-channel supernet (1/K of the channels through the ops) with edge "
    "normalisation; timed with alpha steps (arch_warmup_epochs=0: the default warm-up epochs, the first "
    f"{PC_DARTS_WARMUP_FRACTION:.0%}, only train weights and cost less, so epochs x s/epoch is an upper bound)",
    "dcp-nas": "a Parent round (a first-order DARTS pass on the real supernet) and a Child round (a pass on the "
    "1-bit supernet: tangent alpha-gradient with the GGN curvature product, distillation from the Parent, "
    "reconstruction loss, decoupled backtracking)",
    "cp-nas": "one sampled architecture (one op per edge, single path), trained train_steps batches in both the "
    "real Parent and the 1-bit Child and scored on the whole validation split by both; the search is rounds x "
    f"({_OPS}+{_OPS - 1}+...+2) = {_PRUNE_EPOCHS} x rounds epochs, one op per edge dropped every `rounds` rounds",
    "bnas": "as cp-nas with the Child alone (no Parent is built or trained): one sampled architecture trained "
    "train_steps batches and scored on the validation split",
    "ddpnas": "one sampled architecture (single path) trained for a full pass of the search training split and "
    f"validated on the validation split; the search is rounds_per_prune x ({_OPS}+{_OPS - 1}+...+2) epochs",
    "random": "one pass over the training split with a fresh random path per batch, then candidates_per_epoch "
    "random genotypes scored on the validation split",
}
#: The same, in a table column; formatted with the method's resolved options.
EPOCH_SHORT = {
    "darts": "1 pass: alpha step + w step per batch",
    "pc-darts": "1 pass as darts, K={partial_channels}",
    "dcp-nas": "Parent pass + Child pass ({hessian})",
    "cp-nas": "1 sampled arch: {train_steps} steps x 2 nets + val",
    "bnas": "1 sampled arch: {train_steps} steps (Child) + val",
    "ddpnas": "1 sampled path: 1 pass + val",
    "random": "1 pass, random paths + {candidates_per_epoch} candidates",
}


def methods_config(method: str, options: dict[str, Any], quick: bool) -> RunConfig:
    """The common configuration of (c): the digits defaults, or a tiny one with `quick`."""
    search = SearchConfig(method=method, options=options)
    if not quick:
        return RunConfig(search=search)
    q = preset_config(QUICK_PRESET)
    return RunConfig(
        data=dataclasses.replace(q.data, max_train_samples=QUICK_SAMPLES),
        space=dataclasses.replace(q.space, steps=QUICK_NODES, multiplier=QUICK_NODES),
        search=dataclasses.replace(search, batch_size=QUICK_BATCH),
    )


def describe_config(cfg: RunConfig) -> dict[str, Any]:
    info, samples = data_info(cfg)
    split = int(cfg.data.train_portion * samples)
    space = cfg.space
    return {
        "data": cfg.data.name,
        "image_size": info.image_size,
        "train_samples": samples,
        "search_train_split": split,
        "search_val_split": samples - split,
        "channels": space.channels,
        "layers": space.layers,
        "steps": space.steps,
        "multiplier": space.multiplier,
        "batch_size": cfg.search.batch_size,
        "binary": bool(cfg.search.binary),  # None: real
        "policy": space.policy,
    }


def method_case(method: str, threads: int | None, quick: bool, device: str = "cpu") -> dict[str, Any]:
    """One search epoch of `method` on the (c) configuration after a one-batch warm-up (a round of
    `SAMPLED_EPOCHS` epochs, averaged, for the sampling methods), then a DARTS epoch in the same process for
    the ratio. `peak_rss_mb` is read before the DARTS epoch, so it is the method's own."""
    runtime = make_runtime(threads, device)
    cfg = resolve_method_options(methods_config(method, METHOD_OPTIONS.get(method, {}), quick))
    batch = cfg.search.batch_size
    strategy = build_strategy(cfg, runtime)
    reset_device_peak(runtime.device)
    run_epoch(strategy, runtime, batch, max_batches=WARMUP_BATCHES)
    n = SAMPLED_EPOCHS if method in SAMPLING_METHODS and not quick else 1
    seconds = [run_epoch(strategy, runtime, batch, epoch=e)[0] for e in range(n)]
    out: dict[str, Any] = {"seconds_per_epoch": statistics.mean(seconds), "all_seconds": seconds, "epochs_timed": n}
    out |= {"peak_rss_mb": round(peak_rss_mb(), 1)} | device_peak(runtime.device)
    out |= {"default_num_epochs": strategy.num_epochs(), "options": to_dict(cfg.search.options)}
    del strategy
    if method == "darts":
        out["darts_epoch_same_process_s"] = out["seconds_per_epoch"]
    else:
        search = dataclasses.replace(cfg.search, method="darts", options={})
        darts = build_strategy(dataclasses.replace(cfg, search=search), runtime)
        run_epoch(darts, runtime, batch, max_batches=WARMUP_BATCHES)
        out["darts_epoch_same_process_s"] = run_epoch(darts, runtime, batch)[0]
        del darts
    out["ratio_to_darts_epoch"] = out["seconds_per_epoch"] / out["darts_epoch_same_process_s"]
    out["default_search_s_estimate"] = out["default_num_epochs"] * out["seconds_per_epoch"]
    return out


def part_c(args: argparse.Namespace, run: Callable[..., dict[str, Any]], isolated: bool) -> dict[str, Any]:
    """(c): one epoch of every registered method on one common configuration."""
    load_before = os.getloadavg()
    results = {}
    for method in STRATEGIES.names():
        started = time.perf_counter()
        results[method] = run(method_case, method, args.threads, args.quick, args.device)
        results[method]["epoch_is"] = EPOCH_MEANING.get(method, "see the strategy's docstring")
        progress("c", method, started, results[method])
    return {
        "machine": machine(args, load_before),
        "quick": args.quick,
        "isolated": isolated,
        "config": describe_config(methods_config("darts", {}, args.quick)),
        "warmup_batches": WARMUP_BATCHES,
        "how": (
            f"one engine epoch (`run_epoch`) after a {WARMUP_BATCHES}-batch warm-up; "
            f"{'1' if args.quick else SAMPLED_EPOCHS} epochs averaged for {', '.join(SAMPLING_METHODS)} "
            "(one sampled architecture each); ratio_to_darts_epoch divides by a DARTS epoch of the same "
            "configuration timed in the same process after the method; peak_rss_mb is read before that "
            "DARTS epoch; default_search_s_estimate = default_num_epochs x seconds_per_epoch"
        ),
        "results": results,
    }


def print_c(part: dict[str, Any]) -> None:
    c, m = part["config"], part["machine"]
    print(
        f"(c) one search epoch of every method: {c['data']} {c['image_size']}x{c['image_size']} "
        f"({c['search_train_split']}/{c['search_val_split']} split), C={c['channels']}, {c['layers']} cells, "
        f"batch {c['batch_size']}; ratio: to a DARTS epoch timed in the same process; whole search: default "
        f"epochs x s/epoch [threads {m['threads']}, load {m['loadavg_before'][0]:.2f} -> "
        f"{m['loadavg_after'][0]:.2f}]"
    )
    mem = "peak MB" + ("/CUDA" if any("cuda_peak_mb" in r for r in part["results"].values()) else "")
    head = f"{'method':<10}{'s/epoch':>9}{'ratio':>7}{mem:>13}{'epochs':>8}{'search s':>10}{'search min':>11}"
    print(head + "  one epoch is")
    for name, r in part["results"].items():
        try:
            short = EPOCH_SHORT.get(name, "").format(**r["options"])
        except (KeyError, IndexError):  # an option renamed since
            short = EPOCH_SHORT.get(name, "")
        search_s = r["default_search_s_estimate"]
        print(
            f"{name:<10}{r['seconds_per_epoch']:>9.2f}{r['ratio_to_darts_epoch']:>7.2f}{memory_cell(r):>13}"
            f"{r['default_num_epochs']:>8}{search_s:>10.0f}{search_s / 60:>11.1f}  {short}"
        )
