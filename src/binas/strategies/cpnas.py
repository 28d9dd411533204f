"""CP-NAS (Zhuo et al., IJCAI 2020) and the BNAS-style indicator (Chen et al., AAAI 2020).

Two weight-sharing supernets of one topology: a full-precision Parent and a 1-bit Child. Every sampled
architecture (one op per edge, single path) is trained in both and scored on the validation split;
its indicator z = beta_P (A_P - A_C) + A_C (Eq. 4.15; beta_P = 0.5 by default [Inf], i.e. the mean of
A_P and A_C) goes to every op it used. After T rounds of K
samplings without replacement, the op with the smallest softmax-normalised mean indicator (Eq. 4.16) is
dropped from every edge, until one op per edge remains (Algorithm 9, spec §4.2).

One engine epoch = one sampled architecture, so the engine's per-epoch checkpoint makes a resume exact
even in the middle of a round; the whole search is T (M + ... + 2) epochs (35 T for the 8 DARTS ops).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

import binas.strategies.cpnas_report as report
import binas.strategies.cpnas_schedule as sched
from binas.engine.loop import EpochLoop, Meter, accuracy
from binas.engine.runtime import all_reduce_mean
from binas.engine.strategy import SearchContext, SearchStrategy
from binas.genotype import Genotype, derive
from binas.optim.builders import build_weight_optimizer, cosine_with_warmup, set_lr
from binas.seeds import derive_seed
from binas.space.primitives import CELL_KINDS
from binas.space.supernet import Supernet
from binas.strategies.base import build_supernet, register_strategy
from binas.strategies.cpnas_options import BNASOptions, CPNASOptions, SamplingOptions, check_options
from binas.strategies.cpnas_table import IndicatorTable

logger = logging.getLogger(__name__)


@register_strategy
class CPNAS(SearchStrategy[SamplingOptions]):
    """Child-Parent NAS: sample without replacement, score by Eq. 4.15, abandon the worst op per edge."""

    name = "cp-nas"
    Config: ClassVar[type[SamplingOptions]] = CPNASOptions  # BNAS: BNASOptions
    uses_search_epochs = False  # T rounds of K + ... + 2 sampled architectures
    uses_search_binary = False  # the Child is 1-bit (space.policy), the Parent real
    #: Whether the indicator needs the full-precision Parent's accuracy A_P.
    uses_parent = True

    def __init__(self, ctx: SearchContext, options: CPNASOptions) -> None:
        super().__init__(ctx, options)
        self.child = build_supernet(ctx, binary=True)
        self.c_opt = build_weight_optimizer(list(self.child.parameters()), ctx.search)
        self.parent = build_supernet(ctx, binary=False) if self.uses_parent else None
        self.p_opt = (
            build_weight_optimizer(list(self.parent.parameters()), ctx.search) if self.parent is not None else None
        )
        self.primitives = self.child.primitives
        self.topology = self.child.topology
        check_options(options, self.primitives)
        candidates = tuple(op for op in self.primitives if options.ops is None or op in options.ops)
        self.table = IndicatorTable(
            self.primitives, candidates, self.topology.edges, options.rounds, self.beta_p, self.indicator_sign
        )
        logger.info(
            "%s: %d sampled architectures (T=%d rounds, K=%d..2 ops per edge)",
            self.name,
            self.num_epochs(),
            options.rounds,
            self.table.num_candidates,
        )

    # -- schedule ---------------------------------------------------------------------------------
    @property
    def beta_p(self) -> float:
        assert isinstance(self.options, CPNASOptions)  # BNAS overrides this property
        return self.options.beta_p

    @property
    def indicator_sign(self) -> sched.IndicatorSign:
        assert isinstance(self.options, CPNASOptions)  # BNAS overrides this property
        return self.options.indicator_sign

    def num_epochs(self) -> int:
        total = self.table.schedule_length()
        return total if self.options.max_samples is None else min(total, self.options.max_samples)

    def finished(self) -> bool:
        return self.table.finished()

    # -- one sampled architecture -----------------------------------------------------------------
    def run_epoch(self, epoch: int, loop: EpochLoop) -> dict[str, float]:
        table = self.table
        pos = table.position()
        seed = derive_seed(self.ctx.runtime.seed, "cp-nas-order", pos.stage, pos.round)
        ops = table.round_order(seed)[..., pos.sample]  # (kinds, E): this sample's op per edge
        arch = {kind: ops[i].to(self.device) for i, kind in enumerate(CELL_KINDS)}
        lr = cosine_with_warmup(self.ctx.search.w_lr, self.ctx.search.w_lr_min, epoch, self.num_epochs())
        for _, _, opt in self._nets():
            set_lr(opt, lr)
        meter = self._train(arch, loop, epoch)
        acc_p, acc_c = self._evaluate(arch, loop)
        z = table.record(pos, ops, acc_p, acc_c)
        # metrics in percent like every accuracy binas logs; the indicator itself uses fractions (Eq. 4.15)
        accs = {"child_val_acc": 100.0 * acc_c} | ({} if acc_p is None else {"parent_val_acc": 100.0 * acc_p})
        w_child = sched.indicator_weights(self.beta_p, self.indicator_sign)[1]
        return meter.means() | accs | {"indicator": z, "z_weight_child": w_child, "ops_per_edge": float(pos.k)}

    def _nets(self) -> list[tuple[str, Supernet, torch.optim.Optimizer]]:
        """(role, supernet, optimizer) of the Parent (if used) and the Child."""
        nets = [("child", self.child, self.c_opt)]
        if self.parent is not None and self.p_opt is not None:
            nets.insert(0, ("parent", self.parent, self.p_opt))
        return nets

    def _train(self, arch: dict[str, Tensor], loop: EpochLoop, epoch: int) -> Meter:
        """Train the sampled path of both supernets on the same batches (single path: one op per edge)."""
        meter = Meter()
        grad_clip = self.ctx.search.grad_clip
        nets = self._nets()
        params = {role: list(net.parameters()) for role, net, _ in nets}
        for _, net, _ in nets:
            net.train()
        for x, y in loop.batches(
            self.ctx.train_data,
            stream="train",
            augment=True,
            max_batches=self.options.train_steps,
            desc=f"sample {epoch} train",
        ):
            for role, net, opt in nets:
                logits = net(x, **arch)
                loss = loop.check(F.cross_entropy(logits, y), f"{role} training loss")
                loop.weight_step(loss, opt, params[role], grad_clip)
                meter.update(len(y), **{f"{role}_train_loss": loss.item(), f"{role}_train_acc": accuracy(logits, y)[0]})
        return meter

    @torch.no_grad()
    def _evaluate(self, arch: dict[str, Tensor], loop: EpochLoop) -> tuple[float | None, float]:
        """A_P (None without a Parent) and A_C, as fractions in [0, 1], over every rank's validation shard
        (so all torchrun ranks prune alike). BN uses batch statistics, as in random search: the running
        statistics of a weight-sharing supernet mix every path."""
        nets = self._nets()
        counts = torch.zeros(len(nets) + 1, dtype=torch.float64, device=self.device)  # correct per net, total
        for x, y in loop.batches(
            self.ctx.val_data, stream="val", shuffle=False, max_batches=self.options.eval_batches, show_progress=False
        ):
            for i, (_, net, _) in enumerate(nets):
                counts[i] += (net(x, **arch).argmax(dim=1) == y).sum()
            counts[-1] += len(y)
        counts = all_reduce_mean(counts).cpu()
        acc = {role: float(counts[i] / counts[-1].clamp_min(1)) for i, (role, _, _) in enumerate(nets)}
        return acc.get("parent"), acc["child"]

    def genotype(self) -> Genotype:
        weights = self.table.genotype_weights()
        return derive(weights[0], weights[1], primitives=self.primitives, steps=self.topology.steps)

    # -- state and records ------------------------------------------------------------------------
    def stateful(self) -> dict[str, Any]:
        return {key: obj for role, net, opt in self._nets() for key, obj in ((role, net), (f"{role}_opt", opt))}

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | self.table.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.table.load_state_dict(state)
        super().load_state_dict(state)

    def epoch_record(self) -> dict[str, Any]:
        return report.epoch_record(self.table)

    def write_artifacts(self, run_dir: Path) -> list[Path]:
        return report.write_artifacts(self.name, self.table, run_dir)


@register_strategy
class BNAS(CPNAS):
    """BNAS-style search (Chen et al., AAAI 2020): the indicator is the 1-bit Child's accuracy alone.

    Spec §4.2: "both BNAS and CP-NAS have the evaluation indicator for operation selection. Differently,
    our CP-NAS also uses performance loss", i.e. CP-NAS with beta_P = 0 [Inf]. z = A_C does not need A_P,
    so no full-precision Parent is built or trained: the search costs about half of CP-NAS's.
    """

    name = "bnas"
    Config = BNASOptions
    uses_parent = False

    @property
    def beta_p(self) -> float:
        return 0.0

    @property
    def indicator_sign(self) -> sched.IndicatorSign:
        return "as_printed"
