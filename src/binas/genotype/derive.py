"""The DARTS discretization rule as a pure function: mixing weights (E x M) -> `Genotype`.

DARTS (Liu et al., 2019, §2.4): for every intermediate node keep the `k = 2` incoming edges whose
strongest non-`none` op has the largest weight, and on each kept edge that strongest op. Every strategy
(DARTS, PC-DARTS, CP-NAS, DCP-NAS, DDPNAS) ends by calling this on its own weights, so the search space
facts come from `CellTopology` rather than from a model class (STYLE.md §5, last row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from binas.errors import GenotypeError
from binas.genotype.genotype import CELL_KINDS, PAIRS_PER_NODE, Genotype, Pairs
from binas.space.primitives import NUM_INPUT_NODES, PRIMITIVES, STEPS
from binas.space.topology import CellTopology

#: Ops DARTS never keeps in a derived cell (`none` is the zero op; Liu et al., 2019, §2.4).
DEFAULT_EXCLUDE: tuple[str, ...] = ("none",)


def _to_numpy(weights: Any, kind: str) -> np.ndarray:
    """A float64 copy of a torch tensor or array-like, without importing torch here."""
    if hasattr(weights, "detach"):  # torch.Tensor: leave autograd and the device
        weights = weights.detach().to("cpu").double().numpy()
    try:
        array = np.array(weights, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise GenotypeError(f"{kind} weights are not a numeric matrix: {err}") from None
    return array


def _check_weights(array: np.ndarray, kind: str, num_edges: int, num_ops: int) -> None:
    if array.shape != (num_edges, num_ops):
        raise GenotypeError(
            f"{kind} weights have shape {tuple(array.shape)}; expected ({num_edges}, {num_ops}) (edges x ops)"
        )
    if np.isnan(array).any():
        raise GenotypeError(f"{kind} weights contain NaN")
    finite = array[np.isfinite(array)]
    if (finite < 0).any() or np.isposinf(array).any():
        raise GenotypeError(
            f"{kind} weights must be non-negative mixing weights such as softmax(alpha) "
            f"(-inf or 0 marks a pruned op); got values in [{array.min():.4g}, {array.max():.4g}]"
        )


def derive_cell(
    weights: Any,
    *,
    primitives: Sequence[str] = PRIMITIVES,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    edges_per_node: int = PAIRS_PER_NODE,
    steps: int = STEPS,
    kind: str = "normal",
) -> Pairs:
    """Apply the DARTS rule to one cell's (E x M) weights; return its (op, input_node) pairs.

    An op is a candidate when it is not in `exclude` and its weight is finite and > 0 (so masked or
    pruned ops, given as 0 or -inf, are never chosen). An edge's strength is its best candidate's weight;
    an edge without candidates is never kept, and a node left with fewer than `edges_per_node`
    usable edges raises `GenotypeError`. Ties go to the lowest edge / op index. Within a node, the kept
    pairs are listed strongest first, as DARTS does.
    """
    if edges_per_node != PAIRS_PER_NODE:
        raise GenotypeError(
            f"edges_per_node={edges_per_node}: a Genotype holds exactly {PAIRS_PER_NODE} inputs per node"
        )
    topology = CellTopology(steps)
    array = _to_numpy(weights, kind)
    _check_weights(array, kind, topology.num_edges, len(primitives))

    usable = np.isfinite(array) & (array > 0)
    usable[:, [m for m, op in enumerate(primitives) if op in exclude]] = False
    scores = np.where(usable, array, -np.inf)
    best_op = scores.argmax(axis=1)  # argmax returns the first maximum: lowest op index on ties
    strength = scores.max(axis=1)

    pairs: list[tuple[str, int]] = []
    for node in topology.nodes:
        edges = [e for e in topology.node_edges(node) if np.isfinite(strength[e])]
        if len(edges) < edges_per_node:
            raise GenotypeError(
                f"{kind} cell node {node} has {len(edges)} edge(s) with a usable op; need {edges_per_node} "
                f"(ops excluded: {list(exclude)}; masked ops have weight 0 or -inf)"
            )
        kept = sorted(edges, key=lambda e: (-strength[e], e))[:edges_per_node]
        pairs.extend((primitives[int(best_op[e])], topology.edges[e][0]) for e in kept)
    return tuple(pairs)


def derive(
    normal_weights: Any,
    reduce_weights: Any,
    *,
    primitives: Sequence[str] = PRIMITIVES,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    edges_per_node: int = PAIRS_PER_NODE,
    steps: int = STEPS,
) -> Genotype:
    """Derive a `Genotype` from normal and reduction mixing weights (torch tensors or arrays, E x M).

    Weights are rows of softmax(alpha), probabilities, or 0/1 masks: non-negative, with 0 or -inf for
    ops that were pruned. Columns follow `primitives`. All intermediate nodes are concatenated, as in
    DARTS. See `derive_cell` for the rule.
    """
    cells = {
        kind: derive_cell(
            weights,
            primitives=primitives,
            exclude=exclude,
            edges_per_node=edges_per_node,
            steps=steps,
            kind=kind,
        )
        for kind, weights in zip(CELL_KINDS, (normal_weights, reduce_weights))
    }
    concat = tuple(range(NUM_INPUT_NODES, NUM_INPUT_NODES + steps))
    return Genotype(normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"], reduce_concat=concat)
