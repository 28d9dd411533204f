"""Decoupled optimization of the architecture (DCP-NAS §5.5, Eqs. 4.42-4.53), for any supernet.

After a plain architecture step `α^{t+1} = α^t − η₁ ∂L/∂α` the ops whose weight norm ranks low are
backtracked toward the previous iterate (Eq. 4.52):

    α̃^{t+1}_{e,m} = α^{t+1}_{e,m} + η ψ̃^t_e α^t_{e,m}   if ranking(R(w_m)) > τ,   else α^{t+1}_{e,m}

with η = η₁η₂ (Eq. 4.50 [Rec]), R(w_m) = ‖w_m‖² (Eq. 4.53) and a learnable ψ̃ ≥ 0 that replaces the
unsolvable coupling term ∂w/∂α (Eq. 4.51: ψ̃ ← |ψ̃ − η_ψ ∂L/∂ψ̃|). The backtracked α̃ is stored as the
new α, and the next forward uses `α_eff = α + η ψ̃ α_prev mask` built from ψ̃, so that ∂L/∂ψ̃ exists
(spec §5.5 pseudocode, A6 defaults: per-edge ranking, rank 1 = largest norm, integer τ, ψ̃ ∈ R^{E×1}).

κ = η ψ̃ is the per-step backtrack coefficient. Its size, not the formula, decides whether the mechanism
acts: the caller chooses η and ψ̃₀ (`binas.strategies.dcpnas` sizes κ₀ against the steps of a round).
`stats` reports κ, the backtrack accumulated over the last round relative to ‖α‖, and how far ψ̃ moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

RankOrder = Literal["largest-first", "smallest-first"]
RankScope = Literal["edge", "cell"]
PsiShape = Literal["edge", "edge-op"]

#: ψ̃ initial value (spec §5.5 pseudocode and A6 [Inf]: "init small, e.g. 1e-3").
PSI_INIT = 1e-3


def rank_gate(norms: Tensor, tau: int, *, order: RankOrder = "largest-first", scope: RankScope = "edge") -> Tensor:
    """The Eq. 4.52 condition `ranking(R(w_m)) > τ` as a 0/1 float mask shaped like `norms` (E, M).

    Ranks start at 1; `largest-first` gives rank 1 to the largest norm (spec A6 default). `edge` ranks
    the M ops of each edge, `cell` all E×M entries of the cell type. Ties keep the lower index first.
    """
    flat = norms if scope == "edge" else norms.reshape(1, -1)
    key = -flat if order == "largest-first" else flat
    positions = torch.argsort(key, dim=-1, stable=True)
    ranks = torch.empty_like(positions)
    ranks.scatter_(-1, positions, torch.arange(1, flat.shape[-1] + 1, device=norms.device).expand_as(positions))
    return (ranks > tau).to(norms.dtype).reshape(norms.shape)


def backtrack(alpha_new: Tensor, alpha_prev: Tensor, psi: Tensor, mask: Tensor, eta: float | Tensor) -> Tensor:
    """P(α^{t+1}, α^t) on the gated ops: `α^{t+1} + η ψ̃ ⊛ α^t ⊛ mask` (Eqs. 4.50, 4.52)."""
    return alpha_new + eta * psi * alpha_prev * mask


def psi_update(psi: Tensor, grad: Tensor, lr: float) -> Tensor:
    """Eq. 4.51: `ψ̃ ← |ψ̃ − η_ψ ∂L/∂ψ̃|`; the absolute value keeps ψ̃ ≥ 0."""
    return (psi - lr * grad).abs()


class DecoupledBacktracking(nn.Module):
    """ψ̃, the previous iterate and the gate of one supernet's architecture (normal and reduce cells).

    Use: `alpha_eff = effective(i, alpha)` in the forward; compute `∂L/∂α_eff` into `alpha.grad`; then
    `step(alphas, effectives, optimizer, norms, eta)`. `enabled=False` is the D.O.-off ablation: the
    effective α is α itself and `step` is the optimizer's plain step.
    """

    eta: Tensor  # buffer: η = η₁η₂ of the last step (Eq. 4.50)

    def __init__(
        self,
        num_edges: int,
        num_ops: int,
        *,
        num_kinds: int = 2,
        tau: int = 0,
        order: RankOrder = "largest-first",
        scope: RankScope = "edge",
        psi_shape: PsiShape = "edge",
        psi_init: float = PSI_INIT,
        psi_lr: float = 1.0,
        enabled: bool = True,
    ) -> None:
        super().__init__()
        self.tau, self.order, self.scope, self.psi_lr, self.enabled = tau, order, scope, psi_lr, enabled
        cols = 1 if psi_shape == "edge" else num_ops
        self.psi = nn.ParameterList(nn.Parameter(torch.full((num_edges, cols), psi_init)) for _ in range(num_kinds))
        for i in range(num_kinds):
            self.register_buffer(f"alpha_prev_{i}", torch.zeros(num_edges, num_ops))
            self.register_buffer(f"mask_{i}", torch.zeros(num_edges, num_ops))
        self.register_buffer("eta", torch.zeros(()))
        # Per-round bookkeeping for `stats` (not state: a round always starts with `begin_round`).
        self._round_backtrack = 0.0
        self._psi_start: list[Tensor] = [p.detach().clone() for p in self.psi]

    def _prev(self, i: int) -> Tensor:
        return getattr(self, f"alpha_prev_{i}")

    def _mask(self, i: int) -> Tensor:
        return getattr(self, f"mask_{i}")

    def effective(self, i: int, alpha: Tensor) -> Tensor:
        """α_eff of cell type i: α plus the pending backtrack, differentiable w.r.t. α and ψ̃."""
        if not self.enabled:
            return alpha
        return backtrack(alpha, self._prev(i), self.psi[i], self._mask(i), self.eta)

    @torch.no_grad()
    def begin_round(self, alphas: Sequence[Tensor]) -> None:
        """A new round of this supernet: nothing to backtrack toward yet (the first step is plain)."""
        for i, alpha in enumerate(alphas):
            self._prev(i).copy_(alpha)
            self._mask(i).zero_()
        self._round_backtrack = 0.0
        self._psi_start = [p.detach().clone() for p in self.psi]

    @torch.no_grad()
    def fold(self, alphas: Sequence[nn.Parameter]) -> None:
        """Store the backtracked α̃ as α (spec A6), e.g. before the other supernet inherits it."""
        tilde = [self.effective(i, alpha) for i, alpha in enumerate(alphas)]
        self._count_backtrack(alphas, tilde)
        for alpha, value in zip(alphas, tilde):
            alpha.copy_(value)

    @torch.no_grad()
    def _count_backtrack(self, alphas: Sequence[Tensor], tilde: Sequence[Tensor]) -> None:
        """Add ‖α̃ − α‖ / ‖α‖ of this step (the applied backtrack, relative to α) to the round's total."""
        if not self.enabled:
            return
        moved = torch.cat([(t - a).reshape(-1) for t, a in zip(tilde, alphas)]).norm()
        size = torch.cat([a.reshape(-1) for a in alphas]).norm()
        self._round_backtrack += float(moved / size.clamp_min(torch.finfo(size.dtype).tiny))

    def step(
        self,
        alphas: Sequence[nn.Parameter],
        effectives: Sequence[Tensor],
        optimizer: torch.optim.Optimizer,
        norms: Sequence[Tensor],
        eta: float,
    ) -> None:
        """One decoupled architecture step; each `alphas[i].grad` must hold ∂L/∂α_eff (already synced).

        α^{t+1} = α̃^t − optimizer step; ψ̃ by Eq. 4.51; the gate for the next forward from `norms` (R per
        cell type, Eq. 4.53); η = η₁η₂ of this step (Eq. 4.50).
        """
        if not self.enabled:
            optimizer.step()
            return
        grads = [a.grad for a in alphas]
        psi_grads = torch.autograd.grad(list(effectives), list(self.psi), grad_outputs=grads, allow_unused=True)
        with torch.no_grad():
            tilde = [eff.detach().clone() for eff in effectives]
            self._count_backtrack(alphas, tilde)
            for alpha, value in zip(alphas, tilde):
                alpha.copy_(value)
        optimizer.step()
        with torch.no_grad():
            for i, (psi, g) in enumerate(zip(self.psi, psi_grads)):
                if g is not None:
                    psi.copy_(psi_update(psi, g, self.psi_lr))
                self._prev(i).copy_(tilde[i])
                self._mask(i).copy_(rank_gate(norms[i], self.tau, order=self.order, scope=self.scope))
            self.eta.fill_(eta)

    def stats(self, prefix: str) -> dict[str, float]:
        """What the metrics show of the last round: ψ̃ mean / max, κ = η ψ̃ (mean, the per-step backtrack
        coefficient at the last step), `backtrack_per_round` (Σ over the round's steps of ‖α̃ − α‖ / ‖α‖),
        `psi_change` (‖ψ̃_end − ψ̃_start‖ / ‖ψ̃_start‖ over the round) and the fraction of gated ops."""
        psi = torch.cat([p.detach().reshape(-1) for p in self.psi])
        start = torch.cat([p.reshape(-1) for p in self._psi_start]).to(psi.device)
        gated = torch.cat([self._mask(i).reshape(-1) for i in range(len(self.psi))])
        return {
            f"{prefix}_psi_mean": float(psi.mean()),
            f"{prefix}_psi_max": float(psi.max()),
            f"{prefix}_kappa_mean": float(self.eta * psi.mean()),
            f"{prefix}_backtrack_per_round": self._round_backtrack,
            f"{prefix}_psi_change": float((psi - start).norm() / start.norm().clamp_min(1e-30)),
            f"{prefix}_gated_fraction": float(gated.mean()),
        }
