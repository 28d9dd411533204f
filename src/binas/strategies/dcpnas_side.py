"""One side of DCP-NAS, the real Parent or the 1-bit Child: a supernet and everything that moves it.

Algorithm 10 runs the same kind of round on both sides (weights on train, α on val with decoupled
optimization); a `Side` holds the supernet, its α, the two optimizers, the decoupled-backtracking state
and the per-op weight norms that state needs, so a round takes the side it runs on instead of picking
six attributes by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from binas.engine.loop import EpochLoop
from binas.optim.decoupled import DecoupledBacktracking
from binas.space.arch_params import ArchParameters
from binas.space.op_norms import OpNormTable
from binas.space.primitives import CELL_KINDS
from binas.space.supernet import Supernet


@dataclass
class Side:
    """A supernet with its α (`arch`), weight and α optimizers and decoupled optimization (`decoupled`)."""

    role: str  # "parent" or "child": the metric prefix
    net: Supernet
    arch: ArchParameters
    w_opt: torch.optim.Optimizer
    a_opt: torch.optim.Optimizer
    decoupled: DecoupledBacktracking
    norms: OpNormTable

    def alphas(self) -> list[nn.Parameter]:
        """α of the normal and the reduction cell, in `CELL_KINDS` order."""
        return [self.arch.alpha_normal, self.arch.alpha_reduce]

    def effectives(self) -> list[Tensor]:
        """α as the forward sees it: with the decoupled backtrack applied (Eq. 4.50)."""
        return [self.decoupled.effective(i, a) for i, a in enumerate(self.alphas())]

    def arch_step(self, effectives: Sequence[Tensor], grads: Sequence[Tensor], loop: EpochLoop, eta: float) -> None:
        """Set ∂L/∂α_eff as α's gradient, average it over ranks, and take the decoupled step (Eqs. 4.50-4.52)."""
        alphas = self.alphas()
        for a, g in zip(alphas, grads):
            a.grad = g.detach().clone()
        loop.sync_grads(alphas)
        dec = self.decoupled
        by_kind = self.norms() if dec.enabled else {}
        dec.step(alphas, effectives, self.a_opt, [by_kind[k] for k in CELL_KINDS] if dec.enabled else [], eta)

    @torch.no_grad()
    def copy_alphas_from(self, other: Side) -> None:
        """α ← the other side's α (Algorithm 10 lines 7 and 13)."""
        for mine, theirs in zip(self.alphas(), other.alphas()):
            mine.copy_(theirs)


def mixing_weights(effectives: Sequence[Tensor]) -> dict[str, Tensor]:
    """Supernet forward kwargs: softmax over the ops of each edge (Eq. 4.28)."""
    return {kind: torch.softmax(a, dim=-1) for kind, a in zip(CELL_KINDS, effectives)}
