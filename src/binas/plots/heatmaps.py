"""Heat maps of architecture weights: per edge x op (softmax(alpha), theta, indicators, ...).

`plot_weights_final` draws one E x M map per cell kind (e.g. DARTS's `alpha.json`);
`plot_weights_over_epochs` draws, for every edge, the op weights (rows) across epochs (columns), from
per-epoch matrices found in `metrics.jsonl` records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from binas.genotype.plot import node_label
from binas.plots.figure import new_figure, save
from binas.space.primitives import PRIMITIVES
from binas.space.topology import CellTopology

Matrix = Sequence[Sequence[float]]
CMAP = "viridis"
EDGE_COLUMNS = 7  # 14 DARTS edges -> 2 rows of 7
ANNOTATE_MAX_CELLS = 160  # write the numbers into the cells only when the map is small enough
MAX_STEPS = 16  # largest cell considered when inferring the node count from an edge count


def is_matrix(value: Any) -> bool:
    """A non-empty list of equally long, non-empty lists of numbers (an E x M table)."""
    if not isinstance(value, list) or not value or not all(isinstance(row, list) and row for row in value):
        return False
    width = len(value[0])
    return all(
        len(row) == width and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row) for row in value
    )


def color_range(data: Any) -> tuple[float, float]:
    """The colour scale of a table: [0, 1] for probabilities (rows of values in [0, 1] summing to 1, e.g.
    softmax(α)), so a near-uniform α looks undecided instead of spreading 0.123-0.127 over the whole map;
    the data's own range for other tables (θ, indicators)."""
    import numpy as np

    values = np.asarray(data, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    rows = np.nansum(values, axis=-1)
    if finite.min() >= 0.0 and finite.max() <= 1.0 and np.allclose(rows, 1.0, atol=1e-3):
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def edge_labels(num_edges: int) -> list[str]:
    """`c_{k-2}->0`, ... for a DARTS cell with `num_edges` edges (plain `edge i` if no cell has that many)."""
    for steps in range(1, MAX_STEPS + 1):
        topology = CellTopology(steps)
        if topology.num_edges == num_edges:
            return [f"{node_label(s)}->{node_label(d)}" for s, d in topology.edges]
        if topology.num_edges > num_edges:
            break
    return [f"edge {i}" for i in range(num_edges)]


def op_labels(num_ops: int, primitives: Sequence[str] | None) -> list[str]:
    """The op names for the columns: `primitives` if it fits, DARTS's order if 8, else indices."""
    if primitives is not None and len(primitives) == num_ops:
        return list(primitives)
    return list(PRIMITIVES) if num_ops == len(PRIMITIVES) else [f"op {i}" for i in range(num_ops)]


def plot_weights_final(
    weights: Mapping[str, Matrix],
    path: str | Path,
    *,
    primitives: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """One E x M heat map per entry of `weights` (e.g. {"normal": ..., "reduce": ...})."""
    import numpy as np

    kinds = list(weights)
    fig = new_figure(1, len(kinds), panel=(5.2, 5.0))
    for index, kind in enumerate(kinds):
        data = np.asarray(weights[kind], dtype=float)
        ax = fig.add_subplot(1, len(kinds), index + 1)
        low, high = color_range(data)
        image = ax.imshow(data, cmap=CMAP, aspect="auto", vmin=low, vmax=high)
        ax.set_xticks(range(data.shape[1]), op_labels(data.shape[1], primitives), rotation=60, ha="right", fontsize=7)
        rows = list(row_labels) if row_labels is not None and len(row_labels) == data.shape[0] else None
        ax.set_yticks(range(data.shape[0]), rows or edge_labels(data.shape[0]), fontsize=7)
        ax.set_title(kind, fontsize=10)
        if data.size <= ANNOTATE_MAX_CELLS:
            middle = (low + high) / 2
            for (i, j), v in np.ndenumerate(data):
                ax.text(
                    j, i, f"{v:.3f}", ha="center", va="center", fontsize=5.5, color="black" if v > middle else "white"
                )
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path)


def plot_weights_over_epochs(
    epochs: Sequence[float],
    matrices: Sequence[Matrix],
    path: str | Path,
    *,
    primitives: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """For each edge, a heat map of its op weights (rows: ops) over epochs (columns)."""
    import numpy as np

    data = np.asarray(matrices, dtype=float)  # T x E x M
    _, num_edges, num_ops = data.shape
    cols = min(EDGE_COLUMNS, num_edges)
    rows = math.ceil(num_edges / cols)
    fig = new_figure(rows, cols, panel=(2.6, 2.4))
    low, high = color_range(data)
    ops, labels = op_labels(num_ops, primitives), edge_labels(num_edges)
    image = None
    for edge in range(num_edges):
        ax = fig.add_subplot(rows, cols, edge + 1)
        image = ax.imshow(
            data[:, edge, :].T,
            cmap=CMAP,
            aspect="auto",
            vmin=low,
            vmax=high,
            extent=(epochs[0] - 0.5, epochs[-1] + 0.5, num_ops - 0.5, -0.5),
        )
        ax.set_title(labels[edge], fontsize=8)
        ax.set_yticks(range(num_ops), ops if edge % cols == 0 else [""] * num_ops, fontsize=6)
        ax.tick_params(axis="x", labelsize=6)
        if edge // cols == rows - 1:
            ax.set_xlabel("epoch", fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=fig.axes, fraction=0.02, pad=0.01)
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, path)
