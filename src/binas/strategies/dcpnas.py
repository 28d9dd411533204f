"""DCP-NAS: Discrepant Child-Parent NAS (Li et al., IJCV 2023; spec §5, Algorithm 10).

Each search epoch is one Parent round then one Child round (Algorithm 10, "for each epoch of binary NAS"):

1. Parent round: the real supernet; weights w on the train split (SGD, cosine), α on the val split
   (Adam) with cross-entropy L_NAS (Eq. 4.21) and decoupled optimization (Eqs. 4.50-4.53).
2. α̂ ← α (line 7).
3. Child round: the 1-bit supernet of the same family and topology. ŵ minimises −G + μ L_R (Eqs. 4.32,
   4.34-4.35; −G is the soft cross-entropy against the detached Parent), α̂ steps on
   `g_C + λ H_C ∂D/∂g_C` (Eq. 4.33 in loss space, `binas.objectives.tangent`) with the same decoupled step.
4. α ← α̂ (line 13). The genotype is derived from α̂ (DARTS rule, spec A9).

The round loops live in `binas.strategies.dcpnas_rounds`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from binas.engine.loop import EpochLoop
from binas.genotype import Genotype, derive
from binas.objectives.reconstruction import ReconstructionReduction
from binas.objectives.tangent import DistanceKind, HessianKind
from binas.optim.decoupled import DecoupledBacktracking, OpNormTable, PsiShape, RankOrder, RankScope
from binas.quant.layers import quant_convs
from binas.space.arch_params import CELL_KINDS, ArchParameters
from binas.space.primitives import PRIMITIVES
from binas.strategies.base import (
    SearchContext,
    SearchStrategy,
    build_arch_optimizer,
    build_supernet,
    build_weight_optimizer,
    cosine_lr,
    entropy_per_edge,
    register_strategy,
    set_lr,
)
from binas.strategies.dcpnas_rounds import child_round, parent_round, parent_tangent

logger = logging.getLogger(__name__)

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


@register_strategy
class DCPNAS(SearchStrategy):
    """DCP-NAS: a real Parent and a 1-bit Child supernet that inherit α from each other every epoch.

    `search.binary` does not apply: the Parent is always real and the Child always 1-bit (`space.policy`).
    """

    name = "dcp-nas"
    default_epochs = DIGITS_EPOCHS
    Config = DCPNASOptions

    def __init__(self, ctx: SearchContext, options: Any) -> None:
        super().__init__(ctx, options)
        self.parent = build_supernet(ctx, binary=False)
        self.child = build_supernet(ctx, binary=True)
        topo, num_ops = self.child.topology, self.child.num_ops
        # Both start from the same α (the Child inherits it anyway), drawn without touching the global RNG.
        self.parent_arch, self.child_arch = (
            ArchParameters(topo, num_ops, generator=torch.Generator().manual_seed(ctx.runtime.seed)).to(self.device)
            for _ in range(2)
        )
        self.parent_w_opt = build_weight_optimizer(list(self.parent.parameters()), ctx.search)
        self.child_w_opt = build_weight_optimizer(list(self.child.parameters()), ctx.search)
        self.parent_a_opt = build_arch_optimizer(self.alphas(self.parent_arch), ctx.search)
        self.child_a_opt = build_arch_optimizer(self.alphas(self.child_arch), ctx.search)
        self.parent_do = self._decoupled()
        self.child_do = self._decoupled()
        self.parent_norms = OpNormTable(self.parent)
        self.child_norms = OpNormTable(self.child)
        self.child_convs = quant_convs(self.child)

    def steps_per_round(self) -> int:
        """Architecture steps in one Parent or Child round: the batches of one pass over the train split."""
        return max(1, math.ceil(len(self.ctx.train_data) / self.ctx.search.batch_size))

    def initial_psi(self) -> float:
        """ψ̃₀: `psi_init`, or κ₀ / η₀ with κ₀ = `backtrack_per_round` / `steps_per_round()`."""
        o = self.options
        if o.psi_init is not None:
            return o.psi_init
        eta0 = self.backtrack_eta(self.ctx.search.w_lr)
        kappa0 = o.backtrack_per_round / self.steps_per_round()
        return kappa0 / eta0 if eta0 > 0 else 0.0

    def psi_lr(self) -> float:
        """η_ψ: `psi_lr`, or `PSI_LR_PER_ROUND` / `steps_per_round()`."""
        return self.options.psi_lr if self.options.psi_lr is not None else PSI_LR_PER_ROUND / self.steps_per_round()

    def _decoupled(self) -> DecoupledBacktracking:
        o = self.options
        return DecoupledBacktracking(
            self.child.num_edges, self.child.num_ops, num_kinds=len(CELL_KINDS), tau=o.tau, order=o.rank_order,
            scope=o.rank_scope, psi_shape=o.psi_shape, psi_init=self.initial_psi(), psi_lr=self.psi_lr(),
            enabled=o.use_decoupled,
        ).to(self.device)

    @staticmethod
    def alphas(arch: ArchParameters) -> list[torch.nn.Parameter]:
        """α of the normal and the reduction cell, in `CELL_KINDS` order."""
        return [arch.alpha_normal, arch.alpha_reduce]

    def backtrack_eta(self, w_lr: float) -> float:
        """η of Eq. 4.50 at weight lr `w_lr`: η₁η₂ (architecture lr × weight lr), divided by its epoch-0 value
        under `eta_schedule: normalized`; a set `backtrack_eta` overrides both."""
        o, search = self.options, self.ctx.search
        if o.backtrack_eta is not None:
            return o.backtrack_eta
        if o.eta_schedule == "product":
            return search.arch_lr * w_lr
        return w_lr / search.w_lr if search.w_lr > 0 else 0.0

    def run_epoch(self, epoch: int, loop: EpochLoop) -> dict[str, float]:
        search = self.ctx.search
        w_lr = cosine_lr(search.w_lr, search.w_lr_min, epoch, self.num_epochs())
        set_lr(self.parent_w_opt, w_lr)
        set_lr(self.child_w_opt, w_lr)
        eta = self.backtrack_eta(w_lr)
        metrics = parent_round(self, epoch, loop, eta)
        round_tangent = parent_tangent(self, loop) if self.options.parent_gradient == "per-round" else None
        with torch.no_grad():  # Algorithm 10 line 7: α̂ ← α
            for a_hat, a in zip(self.alphas(self.child_arch), self.alphas(self.parent_arch)):
                a_hat.copy_(a)
        metrics |= child_round(self, epoch, loop, eta, round_tangent)
        with torch.no_grad():  # Algorithm 10 line 13: α ← α̂
            for a, a_hat in zip(self.alphas(self.parent_arch), self.alphas(self.child_arch)):
                a.copy_(a_hat)
        return metrics

    def genotype(self) -> Genotype:
        """The Child's architecture α̂* (Algorithm 10 output), by the DARTS rule."""
        return derive(self.child_arch.derive_weights("normal"), self.child_arch.derive_weights("reduce"),
                      primitives=self.child.primitives, steps=self.child.topology.steps)

    def epoch_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {f"alpha_entropy_{k}": entropy_per_edge(self.child_arch.weights(k))
                                  for k in CELL_KINDS}
        if self.options.use_decoupled:
            record |= self.parent_do.stats("parent") | self.child_do.stats("child")
        return record

    def stateful(self) -> dict[str, Any]:
        # The Child keeps the keys a single-supernet method uses (`supernet`, `arch`, ...).
        return {"supernet": self.child, "arch": self.child_arch, "parent_supernet": self.parent,
                "parent_arch": self.parent_arch, "w_opt": self.child_w_opt, "a_opt": self.child_a_opt,
                "parent_w_opt": self.parent_w_opt, "parent_a_opt": self.parent_a_opt,
                "decoupled": self.child_do, "parent_decoupled": self.parent_do}

    def write_artifacts(self, run_dir: Path) -> list[Path]:
        """`alpha.json`: the Child's softmax(α̂) per cell type, ψ̃ of both supernets, the op names."""
        from binas.engine.rundir import write_json

        path = run_dir / "alpha.json"
        write_json(path, {k: self.child_arch.weights(k).detach().cpu().tolist() for k in CELL_KINDS}
                   | {"psi_child": [p.detach().cpu().tolist() for p in self.child_do.psi],
                      "psi_parent": [p.detach().cpu().tolist() for p in self.parent_do.psi],
                      "primitives": list(self.child.primitives)})
        return [path]
