"""DCP-NAS options (`search.options` of `--method dcp-nas`) and the constants behind their defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from binas.objectives.reconstruction import ReconstructionReduction
from binas.objectives.tangent import DistanceKind, HessianKind
from binas.optim.decoupled import PsiShape, RankOrder, RankScope
from binas.space.primitives import PRIMITIVES

EtaSchedule = Literal["normalized", "product"]
TangentReduction = Literal["sum", "mean"]

#: λ, the tangent-constraint weight: 5e-3 in the Table 4.2 runs (spec §5.7; A13: Fig. 4.15 prefers <= 1e-3).
#: It belongs to D on sum-reduced losses (`tangent_reduction`, [Inf]): on binas's batch-mean losses the
#: same λ made the correction 5e-4 of ‖g_C‖ (inert); as λ·B it is a few percent (measured in the README).
TANGENT_WEIGHT = 5e-3
#: μ, the reconstruction weight (spec §5.7, book p.115-116), on the per-conv mean of L_R (`reconstruction_reduction`).
RECONSTRUCTION_WEIGHT = 0.2
#: τ: ops ranked below the top 4 of the 8 on an edge are backtracked (spec A6 [Inf]: an integer in [0, 8)).
TAU = 4
#: η_ψ × (steps per round), the learning rate of ψ̃ in Eq. 4.51 (unknown, spec §5.7) [Inf]. Measured on the
#: digits search (4 steps per round): η_ψ = 1 moved ψ̃ by 0.2 % per round (it does not learn), η_ψ = 100 by
#: 11-30 %. Divided by the steps of a round like κ₀, so a round moves ψ̃ about as far on any data size.
PSI_LR_PER_ROUND = 400.0
#: Σ over a round of the per-step backtrack coefficient κ = η ψ̃ at the start ([Inf], method review §1.6: the
#: backtrack compounds like (1 + κ)^steps on the gated ops, so κ₀ is sized against the steps of a round).
BACKTRACK_PER_ROUND = 0.1
#: Default search epochs: an epoch is a Parent and a Child round, 4-5 DARTS epochs of compute
#: (benchmarks/search_cost.py), so 3 epochs take about the wall-clock time of the 10-epoch DARTS digits default
#: (about 4 min vs 3.3 min on 2 CPU cores).
DIGITS_EPOCHS = 3


@dataclass(frozen=True)
class DCPNASOptions:
    """DCP-NAS options (`search.options`); the ablation switches reproduce the rows of Tables 4.2-4.4.

    Attributes:
        tangent_weight: λ of the tangent constraint D (Eq. 4.32).
        reconstruction_weight: μ of the reconstruction error L_R (Eq. 4.23).
        use_tangent: tangent propagation on (Table 4.2 "D(α̂)"); off = λ 0, the CP-NAS objective.
        use_reconstruction: L_R on (Table 4.2 "L_R"); off = μ 0.
        use_decoupled: decoupled optimization on (Table 4.3 "D.O.") for both supernets.
        hessian: H_C v product (spec A4): `ggn` (Jᵀ H_z J, default; Table 4.3 "GGN ✓"): the Fisher of
            Eq. 4.36, an expectation over the model's own predictive distribution, which for a softmax
            cross-entropy is exactly the GGN (implementation-notes §1); `empirical-fisher` ((1/B) Σ g_b g_bᵀ
            over per-sample gradients with the observed targets, spec A4's default reading); `ggn-rank1`
            (g_C g_Cᵀ v) or `exact` (double-backward HVP, "GGN ✗").
        distance: D of Eq. 4.31 (Table 4.4): `frobenius` (squared F-norm), `l1` or `cosine`.
        parent_gradient: when g_P is computed (spec A3): `per-batch` (on each Child val batch, at the
            Parent's w and α, which stay fixed during the Child round) or `per-round` (averaged over the val
            split once after the Parent round, Alg. 10 line 5).
        tau: τ of the rank gate (Eq. 4.52): ops ranked > τ are backtracked; M (8) turns it off.
        rank_order: `largest-first` (rank 1 = largest ‖w_m‖², spec A6) or `smallest-first`.
        rank_scope: rank the ops of each `edge` (A6) or all E×M entries of a `cell` type.
        psi_shape: ψ̃ per `edge` (E×1, Eq. 4.49, A6) or per `edge-op` (E×M).
        psi_init: initial ψ̃; None (default) sizes it so that κ₀ = η₀ ψ̃₀ = `backtrack_per_round` / (steps
            per round). A6's 1e-3 with `eta_schedule: product` is the old reading, a no-op: it backtracks
            ~1e-8 of α per step and ∂L/∂ψ̃ carries the same η, so ψ̃ cannot grow.
        psi_lr: η_ψ of Eq. 4.51; None (default) is 400 / (steps per round).
        backtrack_per_round: κ₀ × (steps per round), used when `psi_init` is None.
        eta_schedule: η of Eq. 4.50, η = η₁η₂ (book p.114). `normalized` (default, [Inf]): η₁η₂ / (η₁η₂ at
            epoch 0), 1 at the start and following the weight-lr schedule, so ψ̃ is κ and learns at η_ψ;
            `product`: η₁η₂ itself (arch lr × current weight lr).
        backtrack_eta: a constant η that overrides `eta_schedule` (None: use the schedule).
        tangent_reduction: the loss normalisation D is defined on. `sum` (default, [Inf]): g_C, g_P and H_C
            of sum-reduced batch losses, i.e. λ·B on binas's batch means (B = `search.batch_size`); `mean`:
            λ on the batch means (5e-4 of ‖g_C‖ at λ = 5e-3, inert).
        reconstruction_reduction: L_R per conv as the `mean` over its elements (default, [Inf]) or the `sum`
            (freezes the Child's weight signs at μ = 0.2; `binas.objectives.reconstruction`).
    """

    tangent_weight: float = TANGENT_WEIGHT
    reconstruction_weight: float = RECONSTRUCTION_WEIGHT
    use_tangent: bool = True
    use_reconstruction: bool = True
    use_decoupled: bool = True
    hessian: HessianKind = "ggn"
    distance: DistanceKind = "frobenius"
    parent_gradient: Literal["per-batch", "per-round"] = "per-batch"
    tau: int = TAU
    rank_order: RankOrder = "largest-first"
    rank_scope: RankScope = "edge"
    psi_shape: PsiShape = "edge"
    psi_init: float | None = None
    psi_lr: float | None = None
    backtrack_per_round: float = BACKTRACK_PER_ROUND
    eta_schedule: EtaSchedule = "normalized"
    backtrack_eta: float | None = None
    tangent_reduction: TangentReduction = "sum"
    reconstruction_reduction: ReconstructionReduction = "mean"

    def __post_init__(self) -> None:
        for name in ("tangent_weight", "reconstruction_weight", "psi_init", "psi_lr", "backtrack_per_round"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.tau < 0 or (self.rank_scope == "edge" and self.tau > len(PRIMITIVES)):
            raise ValueError(f"tau must be a rank in [0, {len(PRIMITIVES)}] (the ops of an edge), got {self.tau}")
        if self.backtrack_eta is not None and not (math.isfinite(self.backtrack_eta) and self.backtrack_eta >= 0):
            raise ValueError(f"backtrack_eta must be a finite number >= 0 or null, got {self.backtrack_eta}")

    @property
    def lam(self) -> float:
        """The λ in effect (0 when tangent propagation is off)."""
        return self.tangent_weight if self.use_tangent else 0.0

    @property
    def mu(self) -> float:
        """The μ in effect (0 when the reconstruction loss is off)."""
        return self.reconstruction_weight if self.use_reconstruction else 0.0

    def lam_on_batch_means(self, batch_size: int) -> float:
        """λ for binas's batch-mean losses: λ·B when D is defined on sum-reduced losses (`tangent_reduction`).

        With sum-reduced losses g and H_C scale with B, so λ H_C ∂D/∂g_C scales with B² against g's B.
        """
        return self.lam * batch_size if self.tangent_reduction == "sum" else self.lam
