"""(d) How first-order DARTS, PC-DARTS and DCP-NAS (`ggn`) grow with the cells, the channels and the batch.

One factor at a time from a base point, the digits defaults (`binas search` with no arguments), up to the
DARTS CIFAR-10 search supernet (`darts_cifar10_search` preset): a fixed number of batches after a one-batch
warm-up, extrapolated to an epoch of the digits search split, with peak memory and the ratio to DARTS at the
same point. The three methods of a point run one after the other.
"""

from __future__ import annotations

import argparse
import os
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

from binas.config.schema import DataConfig, RunConfig, SearchConfig, SpaceConfig
from binas.workflows.search import build_strategy

#: The methods (name in the table: registry name, options); PC-DARTS timed with alpha steps.
SCALING_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "darts": ("darts", {}),
    "pc-darts": ("pc-darts", {"arch_warmup_epochs": 0}),
    "dcp-nas-ggn": ("dcp-nas", {"hessian": "ggn"}),
}
#: The largest point of each factor: the DARTS CIFAR-10 search supernet; the smallest number of cells.
CIFAR_PRESET, MIN_LAYERS = "darts_cifar10_search", 3
#: Timed batches per split and point (after the warm-up), extrapolated to an epoch.
SCALING_BATCHES = 3
#: --quick: the `digits_quick` preset's data and supernet, cells of 1 node (`steps`, `multiplier`) instead of
#: 4, batch 8, no warm-up, 1 timed batch.
QUICK_PRESET, QUICK_NODES, QUICK_BATCH, QUICK_SCALING_BATCHES = "digits_quick", 1, 8, 1
#: Keys of a point that go to `SpaceConfig`.
SPACE_KEYS = ("channels", "layers", "steps", "multiplier")


def _point(cfg: RunConfig) -> dict[str, int]:
    size = data_info(cfg)[0].image_size  # the data set's own size when `data.image_size` is null
    return {
        "layers": cfg.space.layers,
        "channels": cfg.space.channels,
        "batch_size": cfg.search.batch_size,
        "image_size": size,
    }


def scaling_base(quick: bool) -> dict[str, int]:
    """The base point: the digits defaults, or the `digits_quick` preset made tinier."""
    if not quick:
        return _point(RunConfig())
    q = preset_config(QUICK_PRESET)
    return _point(q) | {"batch_size": QUICK_BATCH, "steps": QUICK_NODES, "multiplier": QUICK_NODES}


def scaling_factors(base: dict[str, int], quick: bool) -> dict[str, tuple[int, ...]]:
    """The values of each factor, the base's among them: cells from `MIN_LAYERS` and channels from half the
    base's up to the DARTS CIFAR-10 search supernet's, the batch halved and doubled; --quick: the base's cells
    and channels and two steps up."""
    layers, channels, batch = base["layers"], base["channels"], base["batch_size"]
    if quick:
        values = {"layers": (layers, layers + 1, layers + 2), "channels": (channels, 2 * channels, 3 * channels)}
    else:
        cifar = preset_config(CIFAR_PRESET).space
        values = {"layers": (MIN_LAYERS, layers, cifar.layers), "channels": (channels // 2, channels, cifar.channels)}
    values["batch_size"] = (batch // 2, batch, 2 * batch)
    return {factor: tuple(sorted(set(v))) for factor, v in values.items()}


def scaling_points(base: dict[str, int], factors: dict[str, tuple[int, ...]]) -> list[dict[str, int]]:
    """The distinct points of a one-factor-at-a-time sweep around `base` (the base point once)."""
    points: list[dict[str, int]] = []
    for factor, values in factors.items():
        for value in values:
            point = base | {factor: value}
            if point not in points:
                points.append(point)
    return points


def scaling_case(
    method: str,
    options: dict[str, Any],
    point: dict[str, int],
    batches: int,
    threads: int | None,
    device: str = "cpu",
    warmup: int = WARMUP_BATCHES,
) -> dict[str, Any]:
    """`batches` batches per split of `method` at `point` after `warmup` batches, extrapolated to an epoch
    of the digits search split at that batch size (seconds per batch x split size / batch)."""
    b = point["batch_size"]
    full = data_info(RunConfig(data=DataConfig(image_size=point["image_size"])))[1]
    if 2 * batches * b > full:
        raise ValueError(f"{batches} batches of {b} per split need {2 * batches * b} samples; digits has {full}")
    runtime = make_runtime(threads, device)
    cfg = RunConfig(
        data=DataConfig(image_size=point["image_size"], max_train_samples=2 * batches * b),
        space=SpaceConfig(**{k: point[k] for k in SPACE_KEYS if k in point}),
        search=SearchConfig(method=method, batch_size=b, options=options),
    )
    strategy = build_strategy(cfg, runtime)  # both splits: exactly `batches` full batches
    reset_device_peak(runtime.device)
    if warmup:
        run_epoch(strategy, runtime, b, max_batches=warmup)
    seconds = run_epoch(strategy, runtime, b)[0]
    epoch_batches = int(cfg.data.train_portion * full) / b
    return {
        "seconds_timed": seconds,
        "batches_timed": batches,
        "seconds_per_batch": seconds / batches,
        "epoch_batches": epoch_batches,
        "seconds_per_epoch": seconds / batches * epoch_batches,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    } | device_peak(runtime.device)


def part_d(args: argparse.Namespace, run: Callable[..., dict[str, Any]], isolated: bool) -> dict[str, Any]:
    """(d): darts, pc-darts and dcp-nas (ggn) at every point of the one-factor-at-a-time sweep."""
    base = scaling_base(args.quick)
    factors = scaling_factors(base, args.quick)
    batches = args.scaling_batches or (QUICK_SCALING_BATCHES if args.quick else SCALING_BATCHES)
    warmup = 0 if args.quick else WARMUP_BATCHES
    load_before = os.getloadavg()
    measured = []
    for point in scaling_points(base, factors):
        row = {}
        for name, (method, options) in SCALING_METHODS.items():
            started = time.perf_counter()
            row[name] = run(scaling_case, method, options, point, batches, args.threads, args.device, warmup)
            progress("d", f"{name} {point}", started, row[name])
        for r in row.values():
            r["ratio_to_darts"] = r["seconds_per_epoch"] / row["darts"]["seconds_per_epoch"]
        measured.append((point, row))
    tables = {
        factor: [
            {"value": value, "base": value == base[factor], "point": p, "results": row}
            for value in values
            for p, row in measured
            if p == base | {factor: value}
        ]
        for factor, values in factors.items()
    }
    return {
        "machine": machine(args, load_before),
        "quick": args.quick,
        "isolated": isolated,
        "methods": {name: {"method": m, "options": o} for name, (m, o) in SCALING_METHODS.items()},
        "base": base,
        "factors": {k: list(v) for k, v in factors.items()},
        "batches_timed": batches,
        "warmup_batches": warmup,
        "how": (
            f"{batches} batches per split timed after a {warmup}-batch warm-up (the data truncated to exactly "
            f"{batches} full batches per split), extrapolated: seconds_per_epoch = seconds_per_batch x "
            "epoch_batches, epoch_batches = digits search split (half the training set) / batch size; "
            "ratio_to_darts divides by the darts entry of the same point (another process, run just before); "
            "the base point is measured once and appears in every factor's table"
        ),
        "tables": tables,
    }


def print_d(part: dict[str, Any]) -> None:
    m, base = part["machine"], part["base"]
    names = list(part["methods"])
    print(
        f"(d) scaling, one factor at a time from C={base['channels']}, {base['layers']} cells, batch "
        f"{base['batch_size']}, {base['image_size']}x{base['image_size']}: s/epoch extrapolated from "
        f"{part['batches_timed']} timed batches, ratio to DARTS at the same point, peak MB "
        f"[threads {m['threads']}, load {m['loadavg_before'][0]:.2f} -> {m['loadavg_after'][0]:.2f}]"
    )
    header = f"{'factor':<11}{'value':>6}"
    for name in names:
        header += f" | {name + ' s/ep':>16}{'ratio':>6}{'MB':>7}"
    print(header)
    for factor, rows in part["tables"].items():
        for row in rows:
            line = f"{factor:<11}{row['value']:>6}"
            for name in names:
                r = row["results"][name]
                line += f" | {r['seconds_per_epoch']:>16.2f}{r['ratio_to_darts']:>6.2f}{memory_cell(r):>7}"
            print(line + ("  (base)" if row["base"] else ""))
