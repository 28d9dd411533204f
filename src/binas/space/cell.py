"""A search cell: every edge of the DARTS cell carries a `MixedOp`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from binas.quant.policy import BinarizationPolicy
from binas.space.mixed import MixedOp
from binas.space.ops import OP_FAMILIES
from binas.space.primitives import PRIMITIVES
from binas.space.topology import CellTopology


class SearchCell(nn.Module):
    """Two input nodes (preprocessed outputs of the previous two cells), `steps` intermediate nodes."""

    def __init__(
        self,
        topology: CellTopology,
        C_prev_prev: int,
        C_prev: int,
        C: int,
        *,
        reduction: bool,
        reduction_prev: bool,
        family: str = "darts",
        policy: BinarizationPolicy | None = None,
        primitives: Sequence[str] = PRIMITIVES,
        partial_channels: int = 1,
        multiplier: int = 4,
    ) -> None:
        super().__init__()
        fam = OP_FAMILIES.get(family)
        policy = policy or BinarizationPolicy.real()
        self.topology = topology
        self.reduction = reduction
        self.multiplier = multiplier
        self.preprocess0 = (
            fam.factorized_reduce(C_prev_prev, C, False, policy)
            if reduction_prev
            else fam.preprocess(C_prev_prev, C, False, policy)
        )
        self.preprocess1 = fam.preprocess(C_prev, C, False, policy)
        self.edges = nn.ModuleList(
            MixedOp(
                C,
                2 if reduction and src < 2 else 1,
                family=family,
                policy=policy,
                primitives=primitives,
                partial_channels=partial_channels,
            )
            for src, _ in topology.edges
        )

    def forward(
        self,
        s0: Tensor,
        s1: Tensor,
        weights: Tensor | None,
        active: Sequence[Sequence[int]],
        edge_weights: Tensor | None = None,
    ) -> Tensor:
        """`weights`: (E, M) mixing weights or None (single path); `active[e]`: op indices to run on edge e;
        `edge_weights`: optional (E,) PC-DARTS edge-normalisation weights."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in self.topology.nodes:
            total: Tensor | None = None
            for e in self.topology.node_edges(node):
                src = self.topology.edges[e][0]
                y = self.edges[e](states[src], None if weights is None else weights[e], active[e])
                if edge_weights is not None:
                    y = edge_weights[e] * y
                total = y if total is None else total + y
            assert total is not None
            states.append(total)
        return torch.cat(states[-self.multiplier :], dim=1)
