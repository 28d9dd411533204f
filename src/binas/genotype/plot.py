"""Cell diagrams of a `Genotype`: Graphviz DOT text and a matplotlib PNG (no graphviz needed).

Nodes are the cell inputs c_{k-2}, c_{k-1}, the intermediate nodes 0..steps-1 and the output c_{k};
each kept edge is labelled with its op. matplotlib is imported inside the drawing functions (Agg
backend), so importing `binas.genotype` stays light and never needs a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from binas.genotype.genotype import CELL_KINDS, Genotype
from binas.space.primitives import NUM_INPUT_NODES

#: Edge colours per op (colour-blind-safe Okabe-Ito palette), shared by the PNG and the DOT text.
OP_COLORS: dict[str, str] = {
    "none": "#999999",
    "max_pool_3x3": "#E69F00",
    "avg_pool_3x3": "#D55E00",
    "skip_connect": "#555555",
    "sep_conv_3x3": "#0072B2",
    "sep_conv_5x5": "#56B4E9",
    "dil_conv_3x3": "#009E73",
    "dil_conv_5x5": "#CC79A7",
}
INPUT_FILL, NODE_FILL, OUTPUT_FILL = "#D9EAD3", "#DDE8F6", "#FCE8B2"
OUTPUT = "out"  # key of the cell output node in the layout
OUTPUT_EDGE_COLOR = "#888888"
# Layout geometry in data units (1 unit = INCH_PER_UNIT inches in the PNG): layer and row spacing,
# node radius, the side offset added per routing attempt, and the padding around the drawing.
LAYER_DX, NODE_DY, NODE_RADIUS, BEND_STEP, MAX_BENDS, PAD = 3.2, 1.7, 0.36, 0.7, 6, 0.8
CURVE_SAMPLES, INCH_PER_UNIT, TITLE_INCH, DPI = 80, 0.9, 0.4, 150
# Edge-label boxes (8 pt text, in data units) and the fractions along an edge tried for a label, in order.
LABEL_CHAR_WIDTH, LABEL_MARGIN, LABEL_HEIGHT = 0.068, 0.1, 0.26
LABEL_POSITIONS = tuple(sorted(np.linspace(0.2, 0.8, 13), key=lambda f: abs(f - 0.5)))


def node_label(node: int | str) -> str:
    """The conventional name of a cell node: c_{k-2}, c_{k-1}, 0, 1, ..., c_{k}."""
    if not isinstance(node, int):
        return "c_{k}"
    return ("c_{k-2}", "c_{k-1}")[node] if node < NUM_INPUT_NODES else str(node - NUM_INPUT_NODES)


def _node_fill(node: int | str) -> str:
    """Fill colour of a node in both drawings: the output, a cell input or an intermediate node."""
    if not isinstance(node, int):  # the output node, `OUTPUT`
        return OUTPUT_FILL
    return INPUT_FILL if node < NUM_INPUT_NODES else NODE_FILL


def _edges(genotype: Genotype, kind: str) -> list[tuple[int | str, int | str, str | None]]:
    """(source, destination, op) for every op edge, then (node, OUTPUT, None) for every concat node."""
    edges: list[tuple[int | str, int | str, str | None]] = [
        (src, dst, op) for dst, pairs in genotype.node_inputs(kind).items() for op, src in pairs
    ]
    edges += [(node, OUTPUT, None) for node in genotype.concat(kind)]
    return edges


def to_dot(genotype: Genotype, kind: str) -> str:
    """Graphviz DOT text of the `"normal"` or `"reduce"` cell (render with `dot -Tpng`)."""
    edges = _edges(genotype, kind)
    nodes: list[int | str] = list(range(NUM_INPUT_NODES + genotype.steps)) + [OUTPUT]
    lines = [
        f'digraph "{kind}_cell" {{',
        "  rankdir=LR;",
        '  node [shape=circle, style=filled, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=11];',
    ]
    for node in nodes:
        fill = _node_fill(node)
        lines.append(f'  "{node_label(node)}" [fillcolor="{fill}"];')
    for src, dst, op in edges:
        color = OP_COLORS[op] if op else ""
        attrs = f'label="{op}", color="{color}", fontcolor="{color}"' if op else "style=dashed"
        lines.append(f'  "{node_label(src)}" -> "{node_label(dst)}" [{attrs}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layout(genotype: Genotype, kind: str) -> dict[int | str, tuple[float, float]]:
    """Layered positions: x = longest path from the inputs, y spread evenly within each layer."""
    depth: dict[int | str, int] = {0: 0, 1: 0}
    for dst, pairs in genotype.node_inputs(kind).items():
        depth[dst] = 1 + max(depth[src] for _, src in pairs)
    depth[OUTPUT] = 1 + max(depth.values())  # the output is always the last layer
    layers: dict[int, list[int | str]] = {}
    for node, d in depth.items():
        layers.setdefault(d, []).append(node)
    pos: dict[int | str, tuple[float, float]] = {}
    for d, members in layers.items():
        for i, node in enumerate(members):
            pos[node] = (d * LAYER_DX, ((len(members) - 1) / 2 - i) * NODE_DY)
    return pos


def _bezier(p0: np.ndarray, p1: np.ndarray, offset: float) -> np.ndarray:
    """Points of a quadratic Bezier from p0 to p1 whose control point is `offset` units to the left."""
    delta = p1 - p0
    normal = np.array([-delta[1], delta[0]]) / np.linalg.norm(delta)
    control = (p0 + p1) / 2 + normal * offset
    t = np.linspace(0.0, 1.0, CURVE_SAMPLES)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * control + t**2 * p1


def _route(p0: np.ndarray, p1: np.ndarray, others: np.ndarray, repeat: int, outward: float) -> np.ndarray:
    """The straightest curve from p0 to p1 that keeps clear of the other nodes, clipped at both ends.

    Bends alternate sides (preferring `outward`) and grow until no other node is hit; a repeated
    (src, dst) edge starts bent so that it does not hide the first one.
    """
    clearance = NODE_RADIUS * 1.6
    offsets = [0.0] if repeat == 0 else []
    offsets += [sign * BEND_STEP * k for k in range(1, MAX_BENDS + 1) for sign in (outward, -outward)]
    offsets = offsets[min(repeat, len(offsets) - 1) :]
    for offset in offsets:
        points = _bezier(p0, p1, offset)
        if not len(others):
            break
        dist = np.linalg.norm(points[:, None, :] - others[None, :, :], axis=2)
        if dist.min() > clearance:
            break
    gap = NODE_RADIUS * 1.05
    keep = (np.linalg.norm(points - p0, axis=1) > gap) & (np.linalg.norm(points - p1, axis=1) > gap)
    return points[keep]


#: Node positions, and per edge its polyline and op (None for the dashed edges into the output).
Geometry = tuple[dict[int | str, tuple[float, float]], list[tuple[np.ndarray, str | None]]]


def _geometry(genotype: Genotype, kind: str) -> Geometry:
    """Node positions and, per edge, its drawn polyline and op (None for edges into the output)."""
    pos = _layout(genotype, kind)
    seen: dict[tuple[int | str, int | str], int] = {}
    routed = []
    for src, dst, op in _edges(genotype, kind):
        p0, p1 = np.array(pos[src]), np.array(pos[dst])
        repeat = seen.get((src, dst), 0)
        seen[(src, dst)] = repeat + 1
        others = np.array([xy for node, xy in pos.items() if node not in (src, dst)])
        # Left of the travel direction is "up" for left-to-right edges; bow away from the centre line.
        outward = 1.0 if (p0[1] + p1[1]) / 2 >= 0 else -1.0
        routed.append((_route(p0, p1, others, repeat, outward), op))
    return pos, routed


def _place_labels(geometry: Geometry) -> list[np.ndarray | None]:
    """A point on each op edge for its label: the one nearest the middle that least overlaps the nodes
    and the labels placed before it.

    Edges that cross (e.g. c_{k-2} -> 1 and c_{k-1} -> 0) share their midpoint, so midpoints alone would
    stack labels on top of each other.
    """
    pos, routed = geometry
    node_half = np.full(2, NODE_RADIUS)
    # (centre, half-size) of each box to avoid: the nodes, then every label placed so far.
    placed: list[tuple[np.ndarray, np.ndarray]] = [(np.array(xy), node_half) for xy in pos.values()]
    anchors: list[np.ndarray | None] = []
    for points, op in routed:
        if op is None:
            anchors.append(None)
            continue
        half = np.array([len(op) * LABEL_CHAR_WIDTH + LABEL_MARGIN, LABEL_HEIGHT]) / 2
        candidates = [points[int(f * (len(points) - 1))] for f in LABEL_POSITIONS]

        def overlap(centre: np.ndarray, half: np.ndarray = half) -> float:
            sides = [np.clip(half + h - np.abs(centre - c), 0.0, None) for c, h in placed]
            return float(sum(np.prod(side) for side in sides))

        best = min(candidates, key=overlap)  # `min` keeps the first (most central) of equal scores
        placed.append((best, half))
        anchors.append(best)
    return anchors


def _draw(ax: Any, geometry: Geometry, title: str) -> None:
    """Draw edges (op-coloured, labelled), then the nodes on top, on a matplotlib Axes."""
    from matplotlib.patches import Circle

    pos, routed = geometry
    for (points, op), anchor in zip(routed, _place_labels(geometry)):
        color = OP_COLORS[op] if op else OUTPUT_EDGE_COLOR
        ax.plot(points[:-1, 0], points[:-1, 1], "-" if op else "--", color=color, lw=1.6, zorder=1)
        ax.annotate(
            "",
            xy=tuple(points[-1]),
            xytext=tuple(points[-4]),
            arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.6, "mutation_scale": 14},
            zorder=1,
        )
        if op and anchor is not None:
            ax.text(
                anchor[0],
                anchor[1],
                op,
                color=color,
                fontsize=8,
                ha="center",
                va="center",
                zorder=3,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9},
            )
    for node, (x, y) in pos.items():
        fill = _node_fill(node)
        ax.add_patch(Circle((x, y), NODE_RADIUS, fc=fill, ec="#333333", lw=1.4, zorder=4))
        ax.text(x, y, f"${node_label(node)}$", ha="center", va="center", fontsize=11, zorder=5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=11)


def _extent(geometry: Geometry) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) of everything drawn, padded for node circles and edge labels."""
    pos, routed = geometry
    xy = np.concatenate([np.array(list(pos.values()))] + [points for points, _ in routed])
    (xmin, ymin), (xmax, ymax) = xy.min(axis=0), xy.max(axis=0)
    return xmin - PAD, xmax + PAD, ymin - PAD, ymax + PAD


def plot_cell(genotype: Genotype, kind: str, path: str | Path) -> Path:
    """Write a PNG diagram of the `"normal"` or `"reduce"` cell to `path`; return the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    genotype.cell(kind)  # validates `kind` before any drawing
    geometry = _geometry(genotype, kind)
    xmin, xmax, ymin, ymax = _extent(geometry)
    size = ((xmax - xmin) * INCH_PER_UNIT, (ymax - ymin) * INCH_PER_UNIT + TITLE_INCH)
    fig = Figure(figsize=size)  # not pyplot: no global figure state or backend switch
    FigureCanvasAgg(fig)  # render with Agg whatever the session's backend is
    ax = fig.add_subplot(1, 1, 1)
    _draw(ax, geometry, f"{kind} cell  ({genotype.archid})")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path


def save_cell_diagrams(genotype: Genotype, out_dir: str | Path) -> list[Path]:
    """Write `normal.png`, `reduce.png`, `normal.dot`, `reduce.dot` into `out_dir`; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_cell(genotype, kind, out / f"{kind}.png") for kind in CELL_KINDS]
    for kind in CELL_KINDS:
        dot_path = out / f"{kind}.dot"
        dot_path.write_text(to_dot(genotype, kind), encoding="utf-8")
        paths.append(dot_path)
    return paths
