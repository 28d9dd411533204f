"""DDPNAS: dynamic distribution pruning (Zheng et al., arXiv 1905.13543; spec ddpnas §1).

One architecture per epoch, drawn per edge uniformly without replacement from the alive ops, is
trained for a full pass of the training split (single path: only the sampled ops run) and validated
on the validation split with batch-norm batch statistics (the reference keeps `model.train()`). Its
top-1 accuracy is credited to every sampled op; every P rounds theta is updated and the weakest op of
every edge is pruned (`binas.strategies.ddpnas_distribution`), until one op per edge is left, or, with
the original V3 rule (`update: momentum`, the default) on the DARTS space, one parametric and one
non-parametric op per edge (the genotype then takes the higher-theta one, as the reference's DARTS parse
of theta does). The search follows XNAS@92720aa (its sample is the one trained and scored, with *accuracy*), not the
later framework's bugs (spec §1.7).

Runs on the DARTS cell space and on the MobileNetV2-style space (`space.kind`), real or 1-bit
(`search.binary` + `space.policy`). Weights: the project's SGD (`search.w_*`) with a cosine schedule
over the whole pruning schedule by default, or the reference's step schedule (`lr_schedule: step`,
x0.1 at a round boundary every 50 (K/8)(P/3) epochs, spec §4.1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from binas.engine.loop import EpochLoop, Meter, accuracy
from binas.engine.runtime import all_reduce_mean
from binas.engine.strategy import SearchContext, SearchStrategy
from binas.optim.builders import build_weight_optimizer, cosine_with_warmup, set_lr
from binas.seeds import derive_seed
from binas.strategies.base import register_strategy
from binas.strategies.ddpnas_distribution import (
    ACCURACY_SCALE,
    GAMMA,
    MDENAS_LR,
    PruningDistribution,
    UpdateRule,
    schedule,
)
from binas.strategies.ddpnas_spaces import build_space

logger = logging.getLogger(__name__)

#: Step schedule of the reference (spec ddpnas §4.1): x0.1 every 50 epochs for K = 8 ops and P = 3.
LR_STEP_EPOCHS = 50
LR_STEP_REF_OPS = 8
LR_STEP_REF_ROUNDS = 3
LR_STEP_FACTOR = 0.1
#: Digits default of P: one round per pruned op, so the default search (35 epochs on the DARTS space, 27 on
#: the mobile space) finishes in minutes on 2 CPU cores (measured: about 4-5 s of CPU per DARTS epoch and
#: 1-2 s per mobile epoch on the default digits spaces); the reference uses 3 (spec §1.4).
DIGITS_ROUNDS_PER_PRUNE = 1
#: `loop.accuracy` reports percent; DDPNAS credits fractions in [0, 1] (spec §1.3).
PERCENT = 100.0
#: Decimals of theta written to metrics.jsonl each epoch.
THETA_DECIMALS = 6


@dataclass(frozen=True)
class DDPNASOptions:
    """DDPNAS options (`search.options`).

    Attributes:
        rounds_per_prune: P, sampling rounds per pruned op (digits default 1; the reference's
            PRUNING_STEP is 3, spec §1.4: use 3 on CIFAR-10 / ImageNet).
        update: theta update and pruning rule (spec §1.4-§1.5):
            `momentum` (default): the original V3 (XNAS@92720aa): momentum update, never prunes the last
            parametric or the last non-parametric op of an edge (`none` is non-parametric), and stops
            with 2 ops per edge on the DARTS space (P x 33 epochs for 8 ops); on the mobile space there
            is no such split (one group), so it prunes to one op like `momentum_to_one`;
            `momentum_to_one`: V3's update with V1's stop, no cap, one op per edge (XNAS HEAD);
            `score_decay`: V1 (theta = E + 0.5 theta), one op per edge;
            `mdenas`: the predecessor's pairwise rule (spec §5), one op per edge.
        gamma: momentum of the V3 update (`momentum`, `momentum_to_one`; spec §1.4, 0.8).
        score_scale: accuracy multiplier inside the softmax (reference: 100).
        mdenas_lr: probability step of the `mdenas` rule (XNAS THETA_LR, 0.01).
        warmup_rounds: rounds (K epochs each, every op once per edge) that only train (spec §4.1).
        lr_schedule: `cosine` (search.w_lr -> search.w_lr_min over the schedule) or `step` (spec §4.1).
        lr_step_epochs: period of the step schedule (None: 50 (K/8)(P/3)).
        eval_batches: validation batches per epoch (None: the whole validation split).
    """

    rounds_per_prune: int = DIGITS_ROUNDS_PER_PRUNE
    update: UpdateRule = "momentum"
    gamma: float = GAMMA
    score_scale: float = ACCURACY_SCALE
    mdenas_lr: float = MDENAS_LR
    warmup_rounds: int = 0
    lr_schedule: Literal["cosine", "step"] = "cosine"
    lr_step_epochs: int | None = None
    eval_batches: int | None = None

    def __post_init__(self) -> None:
        if self.rounds_per_prune < 1:
            raise ValueError(f"rounds_per_prune must be at least 1, got {self.rounds_per_prune}")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}")
        for name in ("warmup_rounds",):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr_step_epochs", "eval_batches"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer or null, got {getattr(self, name)}")


def step_lr(epoch: int, round_ends: list[int], base: float, minimum: float, period: float) -> float:
    """The reference's step schedule as a pure function of the epoch (spec §4.1): after the last epoch
    of a round that is at or past the next multiple of `period`, multiply by 0.1 while above `minimum`."""
    lr, flag = base, 1
    for end in round_ends:
        if end >= epoch:
            break
        if lr > minimum and end >= flag * period:
            lr *= LR_STEP_FACTOR
            flag += 1
    return lr


@register_strategy
class DDPNAS(SearchStrategy[DDPNASOptions]):
    """DDPNAS on the DARTS cell space or the mobile block space, real or 1-bit."""

    name = "ddpnas"
    Config = DDPNASOptions

    def __init__(self, ctx: SearchContext, options: DDPNASOptions) -> None:
        super().__init__(ctx, options)
        self.space = build_space(ctx, bool(ctx.search.binary))
        self.supernet = self.space.supernet
        self.dist = PruningDistribution(
            self.space.num_edges,
            self.space.num_ops,
            rounds_per_prune=options.rounds_per_prune,
            update=options.update,
            gamma=options.gamma,
            score_scale=options.score_scale,
            mdenas_lr=options.mdenas_lr,
            warmup_rounds=options.warmup_rounds,
            groups=self.space.op_groups(),
        )
        self.w_opt = build_weight_optimizer(list(self.supernet.parameters()), ctx.search)
        self.rounds = schedule(self.space.num_ops, options.rounds_per_prune, options.warmup_rounds, self.dist.final_ops)
        self.samples: list[dict[str, Any]] = []
        self.pruning: list[dict[str, Any]] = []

    def num_epochs(self) -> int:
        """The whole schedule (P (K + ... + 2) epochs plus warm-up), or `search.epochs` if that is shorter
        (a capped search derives its genotype from the ops still alive)."""
        total = sum(self.rounds)
        return total if self.ctx.search.epochs is None else min(total, self.ctx.search.epochs)

    def finished(self) -> bool:
        return self.dist.finished()

    def _lr(self, epoch: int) -> float:
        search, opts = self.ctx.search, self.options
        if opts.lr_schedule == "cosine":
            return cosine_with_warmup(search.w_lr, search.w_lr_min, epoch, self.num_epochs())
        period = opts.lr_step_epochs or (
            LR_STEP_EPOCHS * (self.space.num_ops / LR_STEP_REF_OPS) * (opts.rounds_per_prune / LR_STEP_REF_ROUNDS)
        )
        return step_lr(epoch, (np.cumsum(self.rounds) - 1).tolist(), search.w_lr, search.w_lr_min, period)

    def run_epoch(self, epoch: int, loop: EpochLoop) -> dict[str, float]:
        search = self.ctx.search
        lr = self._lr(epoch)
        set_lr(self.w_opt, lr)
        warmup = self.dist.in_warmup
        generator = torch.Generator().manual_seed(derive_seed(self.ctx.runtime.seed, "ddpnas-sample", epoch))
        sample = self.dist.sample(generator)
        path = sample  # op indices stay on the CPU: the supernets read them as Python ints
        meter = Meter()
        params = list(self.supernet.parameters())
        self.supernet.train()
        for x, y in loop.batches(self.ctx.train_data, stream="train", augment=True, desc=f"epoch {epoch}"):
            logits = self.space.forward(x, path)
            loss = loop.check(F.cross_entropy(logits, y))
            loop.weight_step(loss, self.w_opt, params, search.grad_clip)
            meter.update(len(y), train_loss=loss.item(), train_acc=accuracy(logits, y)[0])
        metrics = meter.means() | {"lr": lr}
        if not warmup:
            val = self._validate(loop, path)
            metrics |= val
            self.dist.record(sample, val["val_acc"] / PERCENT)
        self.samples.append(
            {
                "epoch": epoch,
                "cycle": self.dist.cycle,
                "warmup": warmup,
                "sample": sample.tolist(),
                "val_acc": None if warmup else metrics["val_acc"] / PERCENT,
            }
        )
        pruned = self.dist.step()
        if pruned is not None:
            names = self.space.op_names()
            self.pruning.append(
                {
                    "epoch": epoch,
                    "cycle": self.dist.cycle,
                    "pruned": [None if op < 0 else names[e][op] for e, op in enumerate(pruned)],
                    "pruned_index": pruned,
                }
            )
            logger.info(
                "epoch %d: pruning cycle %d done, %d op(s) left per edge",
                epoch,
                self.dist.cycle,
                int(self.dist.alive_per_edge.max()),
            )
        return metrics | {"alive_ops": float(self.dist.alive_per_edge.mean())}

    @torch.no_grad()
    def _validate(self, loop: EpochLoop, path: torch.Tensor) -> dict[str, float]:
        """Top-1 accuracy (percent) and loss of the sampled path on the validation split, averaged over
        torchrun ranks so that every rank credits the same accuracy. Batch statistics on purpose (spec
        §1.3: the reference validates in `model.train()`)."""
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)  # correct, summed loss, samples
        for x, y in loop.batches(
            self.ctx.val_data, stream="val", shuffle=False, max_batches=self.options.eval_batches, show_progress=False
        ):
            logits = self.space.forward(x, path)
            totals += torch.stack(
                [
                    (logits.argmax(1) == y).sum().double(),
                    F.cross_entropy(logits, y, reduction="sum").double(),
                    torch.tensor(float(len(y)), dtype=torch.float64, device=self.device),
                ]
            )
        correct, loss, count = all_reduce_mean(totals).tolist()
        count = max(count, 1.0)
        return {"val_loss": loss / count, "val_acc": PERCENT * correct / count}

    def genotype(self) -> Any:
        """The DARTS `Genotype` or the `MobileGenotype` of the surviving ops: per edge the alive op of
        highest theta (DARTS: excluding `none`), which is the survivor once one op per edge is left."""
        return self.space.genotype(self.dist.theta, self.dist.alive)

    def epoch_record(self) -> dict[str, Any]:
        return {
            "theta": np.round(self.dist.theta, THETA_DECIMALS).tolist(),
            "cycle": self.dist.cycle,
            "sample": self.samples[-1]["sample"] if self.samples else None,
        }

    def stateful(self) -> dict[str, Any]:
        return {"supernet": self.supernet, "w_opt": self.w_opt, "distribution": self.dist}

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {
            "samples": self.samples,
            "pruning": self.pruning,
            "theta_record": self.theta_record(),
        }  # read by `binas generate` when theta.json is missing

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.samples = list(state["samples"])
        self.pruning = list(state["pruning"])

    def theta_record(self) -> dict[str, Any]:
        """What `binas generate` needs from this search: theta, alive ops, op names, data facts."""
        info = self.ctx.info
        return {
            "space": self.space.kind,
            "update": self.options.update,
            "finished": self.dist.finished(),
            "final_ops_per_edge": self.dist.final_ops,
            "cycle": self.dist.cycle,
            "theta": self.dist.theta.tolist(),
            "alive": self.dist.alive.tolist(),
            "op_names": self.space.op_names(),
            "edges": self.space.edge_labels(),
            "info": {"num_classes": info.num_classes, "in_channels": info.in_channels, "image_size": info.image_size},
            "binary": bool(self.ctx.search.binary),
        }

    def write_artifacts(self, run_dir: Path) -> list[Path]:
        """`theta.json` (final theta, alive ops, op names), `samples.json` (each epoch's architecture and
        accuracy), `pruning.json` (the op pruned on every edge at each cycle, in order)."""
        from binas.storage.files import write_json

        names = self.space.op_names()
        samples = [s | {"ops": [names[e][k] for e, k in enumerate(s["sample"])]} for s in self.samples]
        files = {
            "theta.json": self.theta_record(),
            "samples.json": {"edges": self.space.edge_labels(), "samples": samples},
            "pruning.json": {"edges": self.space.edge_labels(), "cycles": self.pruning},
        }
        paths = []
        for name, data in files.items():
            write_json(run_dir / name, data)
            paths.append(run_dir / name)
        return paths
