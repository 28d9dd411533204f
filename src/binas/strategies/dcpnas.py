"""DCP-NAS: Discrepant Child-Parent NAS (Li et al., IJCV 2023; spec §5, Algorithm 10).

Each search epoch is one Parent round then one Child round (Algorithm 10, "for each epoch of binary NAS"):

1. Parent round: the real supernet; weights w on the train split (SGD, cosine), α on the val split
   (Adam) with cross-entropy L_NAS (Eq. 4.21) and decoupled optimization (Eqs. 4.50-4.53).
2. α̂ ← α (line 7).
3. Child round: the 1-bit supernet of the same family and topology. ŵ minimises −G + μ L_R (Eqs. 4.32,
   4.34-4.35; −G is the soft cross-entropy against the detached Parent), α̂ steps on
   `g_C + λ H_C ∂D/∂g_C` (Eq. 4.33 in loss space, `binas.objectives.tangent`) with the same decoupled step.
4. α ← α̂ (line 13). The genotype is derived from α̂ (DARTS rule, spec A9).

The options are `binas.strategies.dcpnas_options`; each side (Parent, Child) is one
`binas.strategies.dcpnas_side.Side`; the round loops live in `binas.strategies.dcpnas_rounds`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sized
from pathlib import Path
from typing import Any, cast

import torch

from binas.engine.loop import EpochLoop
from binas.engine.strategy import SearchContext, SearchStrategy
from binas.genotype import Genotype, derive
from binas.optim.builders import build_arch_optimizer, build_weight_optimizer, cosine_with_warmup, set_lr
from binas.optim.decoupled import DecoupledBacktracking
from binas.space.arch_params import ArchParameters
from binas.space.op_norms import OpNormTable
from binas.space.primitives import CELL_KINDS
from binas.space.supernet import Supernet
from binas.storage.files import write_json
from binas.strategies.base import build_supernet, entropy_per_edge, register_strategy
from binas.strategies.dcpnas_options import DIGITS_EPOCHS, PSI_LR_PER_ROUND, DCPNASOptions
from binas.strategies.dcpnas_rounds import child_round, parent_round, parent_tangent
from binas.strategies.dcpnas_side import Side

logger = logging.getLogger(__name__)


@register_strategy
class DCPNAS(SearchStrategy[DCPNASOptions]):
    """DCP-NAS: a real Parent and a 1-bit Child supernet that inherit α from each other every epoch.

    `search.binary` does not apply: the Parent is always real and the Child always 1-bit (`space.policy`).
    """

    name = "dcp-nas"
    default_epochs = DIGITS_EPOCHS
    Config = DCPNASOptions
    uses_search_binary = False

    def __init__(self, ctx: SearchContext, options: DCPNASOptions) -> None:
        super().__init__(ctx, options)
        self.parent = self._side("parent", build_supernet(ctx, binary=False))
        self.child = self._side("child", build_supernet(ctx, binary=True))

    def _side(self, role: str, net: Supernet) -> Side:
        # Both sides start from the same α (the Child inherits it anyway), drawn without touching the global RNG.
        arch = ArchParameters(
            net.topology, net.num_ops, generator=torch.Generator().manual_seed(self.ctx.runtime.seed)
        ).to(self.device)
        return Side(
            role,
            net,
            arch,
            build_weight_optimizer(list(net.parameters()), self.ctx.search),
            build_arch_optimizer([arch.alpha_normal, arch.alpha_reduce], self.ctx.search),
            self._decoupled(net),
            OpNormTable(net),
        )

    def steps_per_round(self) -> int:
        """Architecture steps in one Parent or Child round: the batches of one pass over the train split."""
        n = len(cast(Sized, self.ctx.train_data))  # a Subset of the train set (torch's Dataset declares no len)
        return max(1, math.ceil(n / self.ctx.search.batch_size))

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

    def _decoupled(self, net: Supernet) -> DecoupledBacktracking:
        o = self.options
        return DecoupledBacktracking(
            net.num_edges,
            net.num_ops,
            num_kinds=len(CELL_KINDS),
            tau=o.tau,
            order=o.rank_order,
            scope=o.rank_scope,
            psi_shape=o.psi_shape,
            psi_init=self.initial_psi(),
            psi_lr=self.psi_lr(),
            enabled=o.use_decoupled,
        ).to(self.device)

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
        search, parent, child = self.ctx.search, self.parent, self.child
        w_lr = cosine_with_warmup(search.w_lr, search.w_lr_min, epoch, self.num_epochs())
        set_lr(parent.w_opt, w_lr)
        set_lr(child.w_opt, w_lr)
        eta = self.backtrack_eta(w_lr)
        metrics = parent_round(parent, self.ctx, epoch, loop, eta)
        per_round = self.options.parent_gradient == "per-round"
        round_tangent = parent_tangent(parent, self.ctx, loop) if per_round else None
        child.copy_alphas_from(parent)  # Algorithm 10 line 7: α̂ ← α
        metrics |= child_round(child, parent, self.ctx, self.options, epoch, loop, eta, round_tangent)
        parent.copy_alphas_from(child)  # Algorithm 10 line 13: α ← α̂
        return metrics

    def genotype(self) -> Genotype:
        """The Child's architecture α̂* (Algorithm 10 output), by the DARTS rule."""
        arch = self.child.arch
        return derive(
            arch.derive_weights("normal"),
            arch.derive_weights("reduce"),
            primitives=self.child.net.primitives,
            steps=self.child.net.topology.steps,
        )

    def epoch_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            f"alpha_entropy_{k}": entropy_per_edge(self.child.arch.weights(k)) for k in CELL_KINDS
        }
        if self.options.use_decoupled:
            record |= self.parent.decoupled.stats("parent") | self.child.decoupled.stats("child")
        return record

    def stateful(self) -> dict[str, Any]:
        # The Child keeps the keys a single-supernet method uses (`supernet`, `arch`, ...).
        p, c = self.parent, self.child
        return {
            "supernet": c.net,
            "arch": c.arch,
            "parent_supernet": p.net,
            "parent_arch": p.arch,
            "w_opt": c.w_opt,
            "a_opt": c.a_opt,
            "parent_w_opt": p.w_opt,
            "parent_a_opt": p.a_opt,
            "decoupled": c.decoupled,
            "parent_decoupled": p.decoupled,
        }

    def write_artifacts(self, run_dir: Path) -> list[Path]:
        """`alpha.json`: the Child's softmax(α̂) per cell type, ψ̃ of both supernets, the op names."""
        path = run_dir / "alpha.json"
        write_json(
            path,
            {k: self.child.arch.weights(k).detach().cpu().tolist() for k in CELL_KINDS}
            | {
                "psi_child": [p.detach().cpu().tolist() for p in self.child.decoupled.psi],
                "psi_parent": [p.detach().cpu().tolist() for p in self.parent.decoupled.psi],
                "primitives": list(self.child.net.primitives),
            },
        )
        return [path]
