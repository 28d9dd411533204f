"""Curves of every scalar in a metrics.jsonl, grouped by unit: accuracies (%), losses, α entropies (nats),
learning rate, then one panel per other scalar, and the time per epoch last. Curves of different scales
never share an axis (a reconstruction loss of ~300 beside a cross-entropy of ~2 would flatten it)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binas.engine.metrics_log import STEP_KEYS, scalars
from binas.plots.figure import new_figure, save

logger = logging.getLogger(__name__)

COLUMNS = 3
MAX_PANELS = 12  # one figure stays readable; extra metrics are listed in the log, not drawn
#: Keys that are the x axis, not a curve.
#: CP-NAS's position inside a round (`round`, `sample`) is bookkeeping too; its stage is drawn.
SKIPPED_KEYS = frozenset({*STEP_KEYS, "round", "sample"})
#: Curves whose typical values differ by more than this factor do not share a panel (a loss of ~300
#: drawn beside one of ~2 would flatten it).
SHARED_SCALE_RATIO = 10.0


@dataclass(frozen=True)
class Group:
    """Keys drawn together in one panel with the unit they share."""

    title: str
    ylabel: str
    matches: Callable[[str], bool]
    log: bool = False  # log y axis (then curves of any scale share it)
    from_zero: bool = False  # y axis from 0, so a tiny change near the top is not blown up


def _last(key: str) -> str:
    return key.rsplit("/", 1)[-1].lower()


#: In drawing order; a key goes to the first group that matches it, the rest get a panel each (before
#: the timing panel, which comes last).
GROUPS: tuple[Group, ...] = (
    Group("accuracy", "%", lambda k: any(n in _last(k) for n in ("acc", "top1", "top5", "agreement"))),
    Group("loss", "loss", lambda k: _last(k).endswith("loss") and "recon" not in _last(k)),
    Group("reconstruction loss L_R", "L_R", lambda k: "recon" in _last(k) and _last(k).endswith("loss")),
    Group(
        "α entropy per edge",
        "nats (log M: undecided, 0: decided)",
        lambda k: _last(k).startswith("alpha_entropy"),
        from_zero=True,
    ),
    Group("gradient norms", "norm (log scale)", lambda k: _last(k).endswith("_norm"), log=True),
    Group("ψ̃ of decoupled optimization", "ψ̃", lambda k: "_psi_" in f"_{_last(k)}"),
    Group("α entries gated for backtracking", "fraction", lambda k: _last(k).endswith("gated_fraction")),
    Group("sampling schedule", "stage / ops per edge", lambda k: _last(k) in ("stage", "ops_per_edge")),
    Group("learning rate", "lr", lambda k: _last(k) == "lr"),
)
TIME_GROUP = Group("time per epoch", "seconds", lambda k: _last(k).endswith("seconds"))


def collect_series(records: Sequence[Mapping[str, Any]]) -> tuple[list[float], dict[str, list[float]]]:
    """x values (the first `STEP_KEYS` entry of each record, else its index) and one list per scalar key
    (NaN where a record lacks the key), in order of first appearance."""
    xs = [
        next((float(r[k]) for k in STEP_KEYS if isinstance(r.get(k), (int, float))), float(i))
        for i, r in enumerate(records)
    ]
    flat = [scalars(r) for r in records]
    keys: list[str] = []
    for row in flat:
        keys += [k for k in row if k not in keys and k not in SKIPPED_KEYS]
    return xs, {k: [row.get(k, math.nan) for row in flat] for k in keys}


def _typical(values: Sequence[float]) -> float:
    finite = sorted(abs(v) for v in values if math.isfinite(v))
    return finite[len(finite) // 2] if finite else 0.0


def _split_by_scale(keys: list[str], series: Mapping[str, list[float]]) -> list[list[str]]:
    """`keys` in runs of comparable size: a key more than `SHARED_SCALE_RATIO` x another's median is apart."""
    ordered = sorted(keys, key=lambda k: _typical(series[k]))
    runs: list[list[str]] = []
    for key in ordered:
        if runs and _typical(series[key]) <= SHARED_SCALE_RATIO * max(_typical(series[runs[-1][0]]), 1e-12):
            runs[-1].append(key)
        else:
            runs.append([key])
    return [[k for k in keys if k in run] for run in runs]  # keep the metric order inside a panel


@dataclass(frozen=True)
class Panel:
    """One panel of the curves figure: what it draws and how its y axis is scaled."""

    title: str
    ylabel: str
    keys: list[str]
    log: bool = False
    from_zero: bool = False


def group_series(series: Mapping[str, list[float]]) -> list[Panel]:
    """The panels: the `GROUPS` in order (split where scales differ, unless on a log axis), one panel per
    other scalar, then the time per epoch."""
    panels: list[Panel] = []
    taken: set[str] = set()
    for group in GROUPS:
        keys = [k for k in series if group.matches(k) and k not in taken]
        taken.update(keys)
        runs = ([keys] if group.log else _split_by_scale(keys, series)) if keys else []
        for run in runs:
            title = group.title if len(run) == len(keys) else f"{group.title}: {', '.join(run)}"
            panels.append(Panel(title, group.ylabel, run, group.log, group.from_zero))
    timing = [k for k in series if TIME_GROUP.matches(k) and k not in taken]
    taken.update(timing)
    panels += [Panel(k, "", [k]) for k in series if k not in taken]
    if timing:
        panels.append(Panel(TIME_GROUP.title, TIME_GROUP.ylabel, timing))
    return panels


def plot_curves(records: Sequence[Mapping[str, Any]], path: str | Path, *, title: str = "") -> Path | None:
    """Draw the scalar curves of `records` (metrics.jsonl lines) into a PNG; None if nothing to draw."""
    from matplotlib.ticker import MaxNLocator

    xs, series = collect_series(records)
    panels = group_series(series)
    if not panels:
        return None
    if len(panels) > MAX_PANELS:  # keep the groups and the timing panel; drop single metrics from the end
        keep = panels[: MAX_PANELS - 1] + [panels[-1]]
        logger.info("%s: left out: %s", path, ", ".join(p.title for p in panels if p not in keep))
        panels = keep
    cols = min(COLUMNS, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = new_figure(rows, cols)
    for index, panel in enumerate(panels):
        ax = fig.add_subplot(rows, cols, index + 1)
        name, ylabel, keys = panel.title, panel.ylabel, panel.keys
        for key in keys:
            ax.plot(xs, series[key], marker="o" if len(xs) < 30 else None, markersize=3, label=key)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if panel.log and all(v > 0 for k in keys for v in series[k] if math.isfinite(v)):
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", useOffset=False)
        if panel.from_zero:
            ax.set_ylim(bottom=0.0, top=max([v for k in keys for v in series[k] if math.isfinite(v)] or [1.0]) * 1.1)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path)
