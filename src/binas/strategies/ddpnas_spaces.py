"""The two search spaces DDPNAS runs on, behind one small interface (supernet, forward, genotype).

* `darts`: the DARTS cell supernet; theta has E = 2 x 14 rows (normal cell edges, then reduction
  cell edges) over the 8 PRIMITIVES (spec ddpnas §1.1).
* `mobilenet`: the MobileNetV2-style block supernet; one row per searchable block over its K = 7
  candidates (`binas.space.mobilenet`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor, nn

from binas.genotype import Genotype, derive
from binas.quant.policy import BinarizationPolicy
from binas.space.mobilenet import MobileSupernet, candidate_name
from binas.space.mobilenet_genotype import MobileGenotype
from binas.strategies.base import SearchContext, build_supernet

#: Ranking offsets for reading a genotype off theta: theta <= 1 on every row, so every alive op
#: (3 + theta) outranks every pruned op (1 + theta), and pruned ops stay usable (> 0) as a fallback.
ALIVE_OFFSET = 3.0
PRUNED_OFFSET = 1.0


def ranked_weights(theta: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Weights for the DARTS rule: alive ops by theta, then pruned ops by theta.

    When every node has two incoming edges whose surviving op is not `none`, `derive` on these weights
    equals `derive` on theta with the pruned ops zeroed (spec ddpnas §7 note (a)), i.e. the genotype is
    the surviving ops. Otherwise the missing input is the pruned op of highest theta, which is what the
    reference's DARTS parse of the unmasked theta picks (§1.6).
    """
    return np.where(alive, ALIVE_OFFSET + theta, PRUNED_OFFSET + theta)


class DartsSpace:
    """The DARTS cell supernet; a sample is (normal edge ops ++ reduction edge ops)."""

    kind = "darts"

    def __init__(self, ctx: SearchContext, binary: bool) -> None:
        self.supernet: nn.Module = build_supernet(ctx, binary=binary)
        self.cell_edges = self.supernet.num_edges
        self.num_edges = 2 * self.cell_edges
        self.num_ops = self.supernet.num_ops

    def forward(self, x: Tensor, sample: Tensor) -> Tensor:
        return self.supernet(x, sample[: self.cell_edges], sample[self.cell_edges :])

    def op_names(self) -> list[list[str]]:
        return [list(self.supernet.primitives) for _ in range(self.num_edges)]

    def edge_labels(self) -> list[str]:
        edges = self.supernet.topology.edges
        return [f"{kind}:{src}->{dst}" for kind in ("normal", "reduce") for src, dst in edges]

    def genotype(self, theta: np.ndarray, alive: np.ndarray) -> Genotype:
        w = ranked_weights(theta, alive)
        return derive(w[: self.cell_edges], w[self.cell_edges :], primitives=self.supernet.primitives,
                      steps=self.supernet.topology.steps)


class MobileSpace:
    """The MobileNetV2-style block supernet; a sample is one candidate index per searchable block."""

    kind = "mobilenet"

    def __init__(self, ctx: SearchContext, binary: bool) -> None:
        from binas.engine.runtime import preferred_memory_format

        policy = ctx.space.binary_policy() if binary else BinarizationPolicy.real()
        net = MobileSupernet(ctx.space.mobilenet, num_classes=ctx.info.num_classes,
                             in_channels=ctx.info.in_channels, policy=policy)
        device = ctx.runtime.device
        self.supernet: nn.Module = net.to(device, memory_format=preferred_memory_format(device))
        self.candidates = net.candidates()
        self.num_edges = net.num_blocks
        self.num_ops = net.num_ops

    def forward(self, x: Tensor, sample: Tensor) -> Tensor:
        return self.supernet(x, sample)

    def op_names(self) -> list[list[str]]:
        return [[candidate_name(c) for c in cands] for cands in self.candidates]

    def edge_labels(self) -> list[str]:
        return [f"block{i}:{b.spec.c_in}->{b.spec.c_out}/s{b.spec.stride}" for i, b in enumerate(self.supernet.blocks)]

    def genotype(self, theta: np.ndarray, alive: np.ndarray) -> MobileGenotype:
        best = np.where(alive, theta, -np.inf).argmax(axis=1)
        return MobileGenotype.from_indices(self.candidates, best.tolist())


def build_space(ctx: SearchContext, binary: bool) -> Any:
    """The DDPNAS view of `ctx.space.kind`."""
    return MobileSpace(ctx, binary) if ctx.space.kind == "mobilenet" else DartsSpace(ctx, binary)
