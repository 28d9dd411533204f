"""Builders shared by the genotype tests: seeded random genotypes and one-hot weight matrices."""

from __future__ import annotations

import random

import numpy as np

from binas.genotype import Genotype
from binas.space.primitives import PRIMITIVES
from binas.space.topology import CellTopology


def random_genotype(rng: random.Random, steps: int = 4) -> Genotype:
    """A valid genotype with `steps` nodes, random ops (never `none`) and random earlier inputs."""
    ops = [op for op in PRIMITIVES if op != "none"]

    def cell() -> list[tuple[str, int]]:
        return [(rng.choice(ops), rng.randrange(node)) for node in range(2, 2 + steps) for _ in range(2)]

    concat = sorted(rng.sample(range(2 + steps), rng.randint(1, 2 + steps)))
    return Genotype(normal=cell(), normal_concat=concat, reduce=cell(), reduce_concat=concat[::-1])


def one_hot_weights(pairs: tuple[tuple[str, int], ...], steps: int = 4, value: float = 1.0) -> np.ndarray:
    """(E x M) weights with `value` on exactly the (edge, op) of each pair and 0 elsewhere."""
    topology = CellTopology(steps)
    weights = np.zeros((topology.num_edges, len(PRIMITIVES)))
    for i, (op, src) in enumerate(pairs):
        edge = topology.edges.index((src, 2 + i // 2))
        weights[edge, PRIMITIVES.index(op)] = value
    return weights
