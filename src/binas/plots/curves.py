"""Curves of every scalar in a metrics.jsonl: losses together, accuracies together, the rest alone."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from binas.engine.metrics_log import STEP_KEYS, scalars
from binas.plots.figure import new_figure, save

logger = logging.getLogger(__name__)

COLUMNS = 3
MAX_PANELS = 12  # one figure stays readable; extra metrics are listed in the log, not drawn
#: Keys that are bookkeeping, not learning curves.
SKIPPED_KEYS = frozenset({*STEP_KEYS, "seconds"})
GROUPS = ((("loss",), "loss"), (("acc", "top1", "top5"), "accuracy"))  # (substrings of the keys, panel title)


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


def group_series(series: Mapping[str, list[float]]) -> list[tuple[str, list[str]]]:
    """Panels as (title, keys): one for all losses, one for all accuracies, one per other scalar."""
    panels: list[tuple[str, list[str]]] = []
    taken: set[str] = set()
    for needles, title in GROUPS:
        keys = [k for k in series if any(n in k.lower() for n in needles) and k not in taken]
        if keys:
            panels.append((title, keys))
            taken.update(keys)
    panels += [(k, [k]) for k in series if k not in taken]
    return panels


def plot_curves(records: Sequence[Mapping[str, Any]], path: str | Path, *, title: str = "") -> Path | None:
    """Draw the scalar curves of `records` (metrics.jsonl lines) into a PNG; None if nothing to draw."""
    from matplotlib.ticker import MaxNLocator

    xs, series = collect_series(records)
    panels = group_series(series)
    if not panels:
        return None
    if len(panels) > MAX_PANELS:
        logger.info(
            "%s: the first %d panels drawn; left out: %s",
            path,
            MAX_PANELS,
            ", ".join(t for t, _ in panels[MAX_PANELS:]),
        )
        panels = panels[:MAX_PANELS]
    cols = min(COLUMNS, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = new_figure(rows, cols)
    for index, (name, keys) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, index + 1)
        for key in keys:
            ax.plot(xs, series[key], marker="o" if len(xs) < 30 else None, markersize=3, label=key)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.ticklabel_format(axis="y", useOffset=False)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path)
