"""The two search spaces DDPNAS runs on, behind one small interface (supernet, forward, genotype).

* `darts`: the DARTS cell supernet; theta has E = 2 x 14 rows (normal cell edges, then reduction
  cell edges) over the 8 PRIMITIVES (spec ddpnas §1.1). The original V3 cap splits them into
  non-parametric (`none`, pools, skip) and parametric (convs) ops (`op_groups`).
* `mobilenet`: the MobileNetV2-style block supernet; one row per searchable block over its K = 7
  candidates (`binas.space.mobilenet`). No V3 groups: six of the seven candidates are MBConvs and the
  seventh is `zero` or a 3x3 MBConv1 depending on the block, and the reference's V3 cap indexes DARTS
  ops only, so the `momentum` rule prunes to one op here (`op_groups` is None).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from binas.engine.strategy import SearchContext
from binas.genotype import Genotype, derive
from binas.genotype.mobilenet import MobileGenotype
from binas.quant.policy import BinarizationPolicy
from binas.space.mobilenet import MobileSupernet, candidate_name
from binas.space.primitives import CELL_KINDS, NON_PARAMETRIC
from binas.space.supernet import Supernet
from binas.strategies.base import build_supernet
from binas.strategies.ddpnas_distribution import group_labels

#: DDPNAS V3's non-parametric group (XNAS@92720aa `non_param_index`): the weightless ops, `none` included.
WEIGHTLESS = frozenset({"none", *NON_PARAMETRIC})
#: Ranking offsets for reading a genotype off theta: theta <= 1 on every row, so every alive op
#: (3 + theta) outranks every pruned op (1 + theta), and pruned ops stay usable (> 0) as a fallback.
ALIVE_OFFSET = 3.0
PRUNED_OFFSET = 1.0


def ranked_weights(theta: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Weights for the DARTS rule: alive ops by theta, then pruned ops by theta.

    `derive` on these weights is the reference's DARTS parse of theta (§1.6: per edge the best op
    excluding `none`, per node the two strongest edges) restricted to the alive ops whenever every node
    has two incoming edges with an alive op other than `none` (spec ddpnas §7 note (a)). With one op per
    edge that is the survivor; with the original V3's two (one parametric, one non-parametric) it is the
    one of higher theta, or the parametric one when the other is `none`, and every edge has a usable op.
    Otherwise (one op per edge, `none` survivors) the missing input is the pruned op of highest theta,
    which is what the reference's parse of the unmasked theta picks.
    """
    return np.where(alive, ALIVE_OFFSET + theta, PRUNED_OFFSET + theta)


class DartsSpace:
    """The DARTS cell supernet; a sample is (normal edge ops ++ reduction edge ops)."""

    kind = "darts"

    def __init__(self, ctx: SearchContext, binary: bool) -> None:
        self.supernet: Supernet = build_supernet(ctx, binary=binary)
        self.cell_edges = self.supernet.num_edges
        self.num_edges = 2 * self.cell_edges
        self.num_ops = self.supernet.num_ops

    def forward(self, x: Tensor, sample: Tensor) -> Tensor:
        return self.supernet(x, sample[: self.cell_edges], sample[self.cell_edges :])

    def op_names(self) -> list[list[str]]:
        return [list(self.supernet.primitives) for _ in range(self.num_edges)]

    def edge_labels(self) -> list[str]:
        edges = self.supernet.topology.edges
        return [f"{kind}:{src}->{dst}" for kind in CELL_KINDS for src, dst in edges]

    def op_groups(self) -> tuple[int, ...]:
        """V3 groups per op: 0 non-parametric (`WEIGHTLESS`), 1 parametric."""
        return group_labels(self.supernet.primitives, WEIGHTLESS)

    def genotype(self, theta: np.ndarray, alive: np.ndarray) -> Genotype:
        w = ranked_weights(theta, alive)
        return derive(
            w[: self.cell_edges],
            w[self.cell_edges :],
            primitives=self.supernet.primitives,
            steps=self.supernet.topology.steps,
        )


class MobileSpace:
    """The MobileNetV2-style block supernet; a sample is one candidate index per searchable block."""

    kind = "mobilenet"

    def __init__(self, ctx: SearchContext, binary: bool) -> None:
        from binas.engine.runtime import place

        policy = ctx.space.binary_policy() if binary else BinarizationPolicy.real()
        net = MobileSupernet(
            ctx.space.mobilenet, num_classes=ctx.info.num_classes, in_channels=ctx.info.in_channels, policy=policy
        )
        device = ctx.runtime.device
        self.supernet: MobileSupernet = place(net, device)
        self.candidates = net.candidates()
        self.num_edges = net.num_blocks
        self.num_ops = net.num_ops

    def forward(self, x: Tensor, sample: Tensor) -> Tensor:
        return self.supernet(x, sample)

    def op_names(self) -> list[list[str]]:
        return [[candidate_name(c) for c in cands] for cands in self.candidates]

    def edge_labels(self) -> list[str]:
        # `specs[i]` is the spec `blocks[i]` was built from
        return [f"block{i}:{s.c_in}->{s.c_out}/s{s.stride}" for i, s in enumerate(self.supernet.specs)]

    def op_groups(self) -> None:
        """No V3 groups on the mobile space (module docstring): every rule prunes to one op per block."""
        return None

    def genotype(self, theta: np.ndarray, alive: np.ndarray) -> MobileGenotype:
        best = np.where(alive, theta, -np.inf).argmax(axis=1)
        return MobileGenotype.from_indices(self.candidates, best.tolist())


def build_space(ctx: SearchContext, binary: bool) -> Any:
    """The DDPNAS view of `ctx.space.kind`."""
    return MobileSpace(ctx, binary) if ctx.space.kind == "mobilenet" else DartsSpace(ctx, binary)
