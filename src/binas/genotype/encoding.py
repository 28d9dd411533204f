"""Conversions between genotypes and supernet inputs, and random sampling of genotypes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from binas.genotype import Genotype
from binas.genotype.genotype import Pairs
from binas.space.primitives import PRIMITIVES
from binas.space.topology import CellTopology


def genotype_weights(
    genotype: Genotype, kind: str, topology: CellTopology, primitives: Sequence[str] = PRIMITIVES
) -> Tensor:
    """(E, M) 0/1 mixing weights that make a supernet compute exactly the genotype's `kind` cell.

    Edges the genotype does not use get all-zero rows, so the supernet skips them.
    """
    weights = torch.zeros(topology.num_edges, len(primitives))
    edge_index = {edge: e for e, edge in enumerate(topology.edges)}
    pairs = genotype.cell(kind)
    for i, (op, src) in enumerate(pairs):
        dst = 2 + i // 2
        weights[edge_index[(src, dst)], primitives.index(op)] = 1.0
    return weights


def random_genotype(
    generator: torch.Generator | None = None,
    *,
    primitives: Sequence[str] = PRIMITIVES,
    steps: int = 4,
    exclude: Sequence[str] = ("none",),
) -> Genotype:
    """A uniformly random cell pair: each node takes 2 distinct earlier nodes, each with a random op."""
    ops = [p for p in primitives if p not in exclude]

    def cell() -> Pairs:
        pairs: list[tuple[str, int]] = []
        for node in range(2, 2 + steps):
            inputs = torch.randperm(node, generator=generator)[:2].tolist()
            for src in sorted(inputs):
                pairs.append((ops[int(torch.randint(len(ops), (1,), generator=generator))], src))
        return tuple(pairs)

    concat = tuple(range(2, 2 + steps))
    return Genotype(normal=cell(), normal_concat=concat, reduce=cell(), reduce_concat=concat)
