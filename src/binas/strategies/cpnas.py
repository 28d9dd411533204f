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
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from binas.engine.loop import EpochLoop, Meter, accuracy
from binas.engine.runtime import all_reduce_mean, derive_seed
from binas.errors import ConfigError
from binas.genotype import Genotype, derive
from binas.space.arch_params import CELL_KINDS
from binas.strategies import cpnas_report as report
from binas.strategies import cpnas_schedule as sched
from binas.strategies.base import (
    SearchContext,
    SearchStrategy,
    build_supernet,
    build_weight_optimizer,
    cosine_lr,
    register_strategy,
    set_lr,
)
from binas.strategies.cpnas_options import BNASOptions, CPNASOptions, check_options

logger = logging.getLogger(__name__)


@register_strategy
class CPNAS(SearchStrategy):
    """Child-Parent NAS: sample without replacement, score by Eq. 4.15, abandon the worst op per edge."""

    name = "cp-nas"
    Config = CPNASOptions
    #: Whether the indicator needs the full-precision Parent's accuracy A_P.
    uses_parent = True

    def __init__(self, ctx: SearchContext, options: Any) -> None:
        super().__init__(ctx, options)
        self.child = build_supernet(ctx, binary=True)
        self.c_opt = build_weight_optimizer(list(self.child.parameters()), ctx.search)
        self.parent = build_supernet(ctx, binary=False) if self.uses_parent else None
        self.p_opt = (build_weight_optimizer(list(self.parent.parameters()), ctx.search)
                      if self.parent is not None else None)
        self.primitives = self.child.primitives
        self.topology = self.child.topology
        check_options(options, self.primitives)
        self.candidates = tuple(op for op in self.primitives if options.ops is None or op in options.ops)
        self.num_candidates = len(self.candidates)  # K at the start (8 with every DARTS op)
        shape = (len(CELL_KINDS), self.topology.num_edges, len(self.primitives))
        self.alive = torch.tensor([op in self.candidates for op in self.primitives]).expand(shape).clone()
        # z of every (stage, round, cell kind, edge, op); NaN where the op was not sampled.
        self.z = torch.full((sched.num_stages(self.num_candidates), options.rounds, *shape), float("nan"),
                            dtype=torch.float64)
        # A_P and A_C behind each z (same indexing; A_P stays NaN without a Parent): the indicator's
        # dependence on each accuracy is reported per stage (`cpnas_report.dependence`).
        self.acc_parent = torch.full_like(self.z, float("nan"))
        self.acc_child = torch.full_like(self.z, float("nan"))
        # The stage that removed each op; ALIVE while in the search, EXCLUDED if not a candidate.
        self.pruned_at = torch.where(self.alive, sched.ALIVE, sched.EXCLUDED).long()
        self.order: Tensor | None = None  # (kinds, E, K) op indices of the current round
        self.done = 0  # sampled architectures completed
        self._last: dict[str, Any] = {}
        logger.info("%s: %d sampled architectures (T=%d rounds, K=%d..2 ops per edge); search.epochs is not used",
                    self.name, self.num_epochs(), options.rounds, self.num_candidates)

    # -- schedule ---------------------------------------------------------------------------------
    @property
    def beta_p(self) -> float:
        return self.options.beta_p

    @property
    def indicator_sign(self) -> sched.IndicatorSign:
        return self.options.indicator_sign

    def schedule_length(self) -> int:
        return sched.schedule_length(self.num_candidates, self.options.rounds)

    def num_epochs(self) -> int:
        total = self.schedule_length()
        return total if self.options.max_samples is None else min(total, self.options.max_samples)

    def finished(self) -> bool:
        return self.done >= self.schedule_length()

    def _round_order(self, pos: sched.Position) -> Tensor:
        if self.order is None:
            generator = torch.Generator().manual_seed(
                derive_seed(self.ctx.runtime.seed, "cp-nas-order", pos.stage, pos.round))
            self.order = sched.sampling_order(self.alive, generator)
        return self.order

    # -- one sampled architecture -----------------------------------------------------------------
    def run_epoch(self, epoch: int, loop: EpochLoop) -> dict[str, float]:
        pos = sched.position(self.done, self.num_candidates, self.options.rounds)
        ops = self._round_order(pos)[..., pos.sample]  # (kinds, E): this sample's op per edge
        arch = {kind: ops[i].to(self.device) for i, kind in enumerate(CELL_KINDS)}
        lr = cosine_lr(self.ctx.search.w_lr, self.ctx.search.w_lr_min, epoch, self.num_epochs())
        for _, _, opt in self._nets():
            set_lr(opt, lr)
        meter = self._train(arch, loop, epoch)
        acc_p, acc_c = self._evaluate(arch, loop)
        z = sched.indicator(acc_c if acc_p is None else acc_p, acc_c, self.beta_p, self.indicator_sign)
        kinds = torch.arange(len(CELL_KINDS))[:, None]
        edges = torch.arange(self.topology.num_edges)[None, :]
        self.z[pos.stage, pos.round][kinds, edges, ops] = z  # Eq. 4.15: the same z for every sampled op
        self.acc_child[pos.stage, pos.round][kinds, edges, ops] = acc_c
        if acc_p is not None:
            self.acc_parent[pos.stage, pos.round][kinds, edges, ops] = acc_p
        self.done += 1
        self._last = {"position": pos, "ops": ops}
        if pos.ends_round:
            self.order = None
        if pos.ends_stage(self.options.rounds):
            self._prune(pos.stage)
        accs = {"child_val_acc": acc_c} if acc_p is None else {"parent_val_acc": acc_p, "child_val_acc": acc_c}
        w_child = sched.indicator_weights(self.beta_p, self.indicator_sign)[1]
        return meter.means() | accs | {"indicator": z, "z_weight_child": w_child, "ops_per_edge": float(pos.k)}

    def _nets(self) -> list[tuple[str, nn.Module, torch.optim.Optimizer]]:
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
        for _, net, _ in nets:
            net.train()
        for x, y in loop.batches(self.ctx.train_data, stream="train", augment=True,
                                 max_batches=self.options.train_steps, desc=f"sample {epoch} train"):
            for role, net, opt in nets:
                logits = net(x, **arch)
                loss = loop.check(F.cross_entropy(logits, y), f"{role} training loss")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                loop.sync_grads(net.parameters())
                torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
                opt.step()
                meter.update(len(y), **{f"{role}_train_loss": loss.item(),
                                        f"{role}_train_acc": accuracy(logits, y)[0]})
        return meter

    @torch.no_grad()
    def _evaluate(self, arch: dict[str, Tensor], loop: EpochLoop) -> tuple[float | None, float]:
        """A_P (None without a Parent) and A_C, as fractions in [0, 1], over every rank's validation shard
        (so all torchrun ranks prune alike). BN uses batch statistics, as in random search: the running
        statistics of a weight-sharing supernet mix every path."""
        nets = self._nets()
        counts = torch.zeros(len(nets) + 1, dtype=torch.float64, device=self.device)  # correct per net, total
        for x, y in loop.batches(self.ctx.val_data, stream="val", shuffle=False,
                                 max_batches=self.options.eval_batches, show_progress=False):
            for i, (_, net, _) in enumerate(nets):
                counts[i] += (net(x, **arch).argmax(dim=1) == y).sum()
            counts[-1] += len(y)
        counts = all_reduce_mean(counts).cpu()
        acc = {role: float(counts[i] / counts[-1].clamp_min(1)) for i, (role, _, _) in enumerate(nets)}
        return acc.get("parent"), acc["child"]

    def _prune(self, stage: int) -> None:
        """End of a stage: e(.) from the T-round mean (Eq. 4.16); drop the worst op of every edge."""
        e = self.stage_e(stage)
        self.alive, worst = sched.prune_worst(e, self.alive)
        self.pruned_at.scatter_(-1, worst.unsqueeze(-1), stage)
        self._last["pruned"] = worst

    # -- indicators and genotype ------------------------------------------------------------------
    def stage_alive(self, stage: int) -> Tensor:
        """The ops that were still in the search during `stage`."""
        return (self.pruned_at == sched.ALIVE) | (self.pruned_at >= stage)

    def stage_e(self, stage: int) -> Tensor:
        """e(.) of Eq. 4.16 for `stage`, from the z its ops received (all T rounds once the stage is over)."""
        return sched.normalized_indicator(sched.mean_indicator(self.z[stage]), self.stage_alive(stage))

    def current_e(self) -> Tensor:
        """The latest e(.) of the remaining ops: the mean of every z received in the current stage so far
        (a partial round included); ops not sampled yet in this stage keep the previous stage's mean."""
        if self.finished():
            return self.stage_e(sched.num_stages(self.num_candidates) - 1)
        stage = sched.position(self.done, self.num_candidates, self.options.rounds).stage
        z_bar = sched.mean_indicator(self.z[stage])
        if stage > 0:
            z_bar = z_bar.where(~z_bar.isnan(), sched.mean_indicator(self.z[stage - 1]))
        return sched.normalized_indicator(z_bar, self.alive)

    def genotype(self) -> Genotype:
        """A9 when one op per edge remains; before that the DARTS rule over the current e(.) with the
        removed ops masked, the search's current best guess."""
        steps = self.topology.steps
        if self.finished():
            none = self.primitives.index("none") if "none" in self.primitives else None
            last_e = self.current_e()
            weights = [sched.final_weights(last_e[i], self.alive[i], none) for i in range(len(CELL_KINDS))]
        else:
            e = self.current_e()
            weights = [e[i] for i in range(len(CELL_KINDS))]
        return derive(weights[0], weights[1], primitives=self.primitives, steps=steps)

    # -- state and records ------------------------------------------------------------------------
    def stateful(self) -> dict[str, Any]:
        return {key: obj for role, net, opt in self._nets() for key, obj in ((role, net), (f"{role}_opt", opt))}

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {
                "alive": self.alive.clone(), "z": self.z.clone(), "pruned_at": self.pruned_at.clone(),
                "acc_parent": self.acc_parent.clone(), "acc_child": self.acc_child.clone(),
                "order": None if self.order is None else self.order.clone(), "done": self.done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["z"].shape) != tuple(self.z.shape):
            raise ConfigError(
                f"checkpoint indicator table has shape {tuple(state['z'].shape)}, expected {tuple(self.z.shape)}: "
                "resume with the options of the interrupted run")
        super().load_state_dict(state)
        self.alive = state["alive"].clone()
        self.z = state["z"].clone()
        # Checkpoints from before the accuracy tables: the dependence metrics of old stages are left out.
        self.acc_parent = state.get("acc_parent", torch.full_like(self.z, float("nan"))).clone()
        self.acc_child = state.get("acc_child", torch.full_like(self.z, float("nan"))).clone()
        self.pruned_at = state["pruned_at"].clone()
        self.order = None if state["order"] is None else state["order"].clone()
        self.done = int(state["done"])

    def epoch_record(self) -> dict[str, Any]:
        return report.epoch_record(self)

    def write_artifacts(self, run_dir: Path) -> list[Path]:
        return report.write_artifacts(self, run_dir)


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
