"""Topology facts of a DARTS cell: which edges exist and which edges feed which node."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from binas.space.primitives import NUM_INPUT_NODES, STEPS


@dataclass(frozen=True)
class CellTopology:
    """A cell with `steps` intermediate nodes; node j (>= 2) takes an edge from every earlier node.

    Edges are numbered in DARTS order: node 2's edges from nodes 0, 1, then node 3's from 0, 1, 2, ...
    """

    steps: int = STEPS

    @cached_property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(source node, destination node) for each edge, in alpha-row order."""
        return tuple((src, dst) for dst in range(NUM_INPUT_NODES, NUM_INPUT_NODES + self.steps) for src in range(dst))

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    def node_edges(self, node: int) -> list[int]:
        """Indices of the edges entering intermediate node `node` (2 .. steps + 1)."""
        return [e for e, (_, dst) in enumerate(self.edges) if dst == node]

    @property
    def nodes(self) -> range:
        """The intermediate nodes."""
        return range(NUM_INPUT_NODES, NUM_INPUT_NODES + self.steps)
