"""Structurally constrained DARTS cells from DDPNAS's theta (spec ddpnas §2.2, XNAS@92720aa `get_network`).

Per edge, the candidates are its best non-parametric op (argmax theta over max/avg pool and skip) and its
best parametric op (argmax over the sep/dil convs). Every cell graph in which intermediate node m takes
two distinct inputs among its m + 2 predecessors (1 x 3 x 6 x 10 = 180 graphs for 4 nodes) whose
*height* (the longest chain of intermediate nodes, inputs count 0) is at most h is combined with every
choice of exactly N of its 8 edges that take the non-parametric op. The cell with the largest summed
theta wins (ties: the first in enumeration order, as the reference's strict `>`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from binas.generation.budgets import GenerationError
from binas.genotype import Genotype, derive_cell
from binas.genotype.genotype import PAIRS_PER_NODE, Pairs
from binas.space.primitives import NON_PARAMETRIC, NUM_INPUT_NODES, PARAMETRIC, PRIMITIVES, STEPS
from binas.space.topology import CellTopology

Graph = tuple[tuple[int, int], ...]


def cell_graphs(steps: int = STEPS) -> list[Graph]:
    """Every choice of two distinct earlier nodes per intermediate node, in the reference's order."""
    per_node = [list(itertools.combinations(range(NUM_INPUT_NODES + m), PAIRS_PER_NODE)) for m in range(steps)]
    return [tuple(g) for g in itertools.product(*per_node)]


def graph_height(graph: Graph) -> int:
    """Longest chain of intermediate nodes (a node fed only by the cell inputs has height 1)."""
    heights: list[int] = []
    for inputs in graph:
        heights.append(1 + max(0 if src < NUM_INPUT_NODES else heights[src - NUM_INPUT_NODES] for src in inputs))
    return max(heights)


@dataclass(frozen=True)
class ConstrainedCell:
    """A cell meeting the constraints: its (op, input) pairs, summed theta, height and non-param count."""

    pairs: Pairs
    score: float
    height: int
    non_param: int


def _best_in(theta_row: np.ndarray, columns: list[int]) -> int:
    return columns[int(np.argmax(theta_row[columns]))]


def enumerate_cells(
    theta: np.ndarray,
    *,
    height: int,
    non_param: int,
    primitives: Sequence[str] = PRIMITIVES,
    steps: int = STEPS,
) -> Iterator[ConstrainedCell]:
    """Every cell of height <= `height` with exactly `non_param` non-parametric ops, with its score."""
    edges_per_cell = PAIRS_PER_NODE * steps
    if not 0 <= non_param <= edges_per_cell:
        raise GenerationError(f"non-parametric op count must be in 0..{edges_per_cell}, got {non_param}")
    if height < 1:
        raise GenerationError(f"cell height must be at least 1, got {height}")
    theta = np.asarray(theta, dtype=np.float64)
    topology = CellTopology(steps)
    if theta.shape != (topology.num_edges, len(primitives)):
        raise GenerationError(f"theta of a cell must be ({topology.num_edges}, {len(primitives)}), got {theta.shape}")
    edge_index = {edge: e for e, edge in enumerate(topology.edges)}
    np_cols = [primitives.index(op) for op in NON_PARAMETRIC if op in primitives]
    p_cols = [primitives.index(op) for op in PARAMETRIC if op in primitives]
    best_np = [_best_in(theta[e], np_cols) for e in range(topology.num_edges)]
    best_p = [_best_in(theta[e], p_cols) for e in range(topology.num_edges)]
    selections = list(itertools.combinations(range(edges_per_cell), non_param))
    for graph in cell_graphs(steps):
        h = graph_height(graph)
        if h > height:
            continue
        slots = [(src, NUM_INPUT_NODES + m) for m, inputs in enumerate(graph) for src in inputs]
        rows = [edge_index[slot] for slot in slots]
        for selection in selections:
            chosen = set(selection)
            ops = [best_np[e] if s in chosen else best_p[e] for s, e in enumerate(rows)]
            score = float(sum(theta[e, op] for e, op in zip(rows, ops)))
            pairs = tuple((primitives[op], src) for op, (src, _) in zip(ops, slots))
            yield ConstrainedCell(pairs, score, h, non_param)


def best_cell(
    theta: np.ndarray, *, height: int, non_param: int, primitives: Sequence[str] = PRIMITIVES, steps: int = STEPS
) -> ConstrainedCell:
    """The highest-scoring cell of `enumerate_cells` (first one on ties)."""
    best: ConstrainedCell | None = None
    for cell in enumerate_cells(theta, height=height, non_param=non_param, primitives=primitives, steps=steps):
        if best is None or cell.score > best.score:
            best = cell
    assert best is not None  # 0 <= non_param <= 2 * steps and height >= 1 always leave a cell
    return best


def constrained_genotype(
    theta: np.ndarray,
    *,
    height: int,
    non_param: int,
    constrain_reduce: bool = False,
    primitives: Sequence[str] = PRIMITIVES,
    steps: int = STEPS,
) -> tuple[Genotype, float]:
    """A genotype whose normal cell (and reduction cell with `constrain_reduce`) meets the constraints.

    `theta` stacks the normal-cell rows over the reduction-cell rows (2E x K). Without
    `constrain_reduce` the reduction cell is the plain DARTS parse of theta (the reference's default).
    Returns the genotype and its score (summed theta of the constrained cells, averaged over both cells
    when both are constrained, as the reference does).
    """
    theta = np.asarray(theta, dtype=np.float64)
    e = CellTopology(steps).num_edges
    normal = best_cell(theta[:e], height=height, non_param=non_param, primitives=primitives, steps=steps)
    score = normal.score
    if constrain_reduce:
        reduce_cell = best_cell(theta[e:], height=height, non_param=non_param, primitives=primitives, steps=steps)
        reduce_pairs, score = reduce_cell.pairs, (score + reduce_cell.score) / 2
    else:
        reduce_pairs = derive_cell(np.clip(theta[e:], 0.0, None), primitives=primitives, steps=steps, kind="reduce")
    concat = tuple(range(NUM_INPUT_NODES, NUM_INPUT_NODES + steps))
    return Genotype(normal.pairs, concat, reduce_pairs, concat), score
