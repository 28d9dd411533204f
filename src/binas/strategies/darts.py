"""First-order DARTS and PC-DARTS.

DARTS (Liu et al., ICLR 2019), first-order variant: alternate an architecture step (Adam on alpha,
validation loss at the current weights) and a weight step (SGD on the training loss).
PC-DARTS (Xu et al., ICLR 2020) is the same loop on a partial-channel supernet (K) with edge
normalisation (beta) and a warm-up during which alpha is not updated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from binas.engine.loop import EpochLoop, Meter, accuracy
from binas.engine.strategy import SearchContext, SearchStrategy
from binas.genotype import Genotype, derive
from binas.optim.builders import build_arch_optimizer, build_weight_optimizer, cosine_with_warmup, set_lr
from binas.space.arch_params import ArchParameters
from binas.space.primitives import CELL_KINDS
from binas.strategies.base import build_supernet, entropy_per_edge, register_strategy

#: PC-DARTS CIFAR-10 settings (Xu et al., 2020): K = 4, alpha frozen for the first 15 of 50 epochs.
PC_DARTS_K = 4
PC_DARTS_WARMUP_FRACTION = 15 / 50


@dataclass(frozen=True)
class DartsOptions:
    """DARTS options.

    Attributes:
        arch_warmup_epochs: epochs at the start during which only the weights are trained.
    """

    arch_warmup_epochs: int = 0


@dataclass(frozen=True)
class PCDartsOptions:
    """PC-DARTS options.

    Attributes:
        partial_channels: K, the channel sampling ratio 1/K.
        edge_normalization: learn per-edge weights beta (softmax over each node's inputs).
        arch_warmup_epochs: epochs before alpha/beta start to move (None: 30% of the epochs, as 15/50).
    """

    partial_channels: int = PC_DARTS_K
    edge_normalization: bool = True
    arch_warmup_epochs: int | None = None


@register_strategy
class Darts(SearchStrategy[DartsOptions | PCDartsOptions]):
    """First-order DARTS on a real or 1-bit supernet (`search.binary`)."""

    name = "darts"
    Config: ClassVar[type[DartsOptions] | type[PCDartsOptions]] = DartsOptions  # PC-DARTS: PCDartsOptions

    def __init__(self, ctx: SearchContext, options: DartsOptions | PCDartsOptions) -> None:
        super().__init__(ctx, options)
        k, edge_normalization = self.partial_channels()
        self.supernet = build_supernet(ctx, binary=bool(ctx.search.binary), partial_channels=k)
        generator = torch.Generator().manual_seed(ctx.runtime.seed)
        self.arch = ArchParameters(
            self.supernet.topology,
            self.supernet.num_ops,
            edge_normalization=edge_normalization,
            generator=generator,
        ).to(self.device)
        self.w_opt = build_weight_optimizer(list(self.supernet.parameters()), ctx.search)
        self.a_opt = build_arch_optimizer(list(self.arch.parameters()), ctx.search)

    def partial_channels(self) -> tuple[int, bool]:
        """(K, edge normalisation): DARTS runs every channel through the ops and has no edge weights."""
        return 1, False

    def arch_warmup(self) -> int:
        assert isinstance(self.options, DartsOptions)  # PC-DARTS overrides this method
        return self.options.arch_warmup_epochs

    def run_epoch(self, epoch: int, loop: EpochLoop) -> dict[str, float]:
        search = self.ctx.search
        set_lr(self.w_opt, cosine_with_warmup(search.w_lr, search.w_lr_min, epoch, self.num_epochs()))
        update_arch = epoch >= self.arch_warmup()
        arch_params = list(self.arch.parameters())
        meter = Meter()
        params = list(self.supernet.parameters())
        self.supernet.train()
        for (x, y), (xv, yv) in loop.paired(self.ctx.train_data, self.ctx.val_data, desc=f"epoch {epoch}"):
            if update_arch:  # first-order architecture step on the validation batch
                logits_v = self.supernet(xv, **self.arch.forward_kwargs())
                loss_v = loop.check(F.cross_entropy(logits_v, yv), "validation loss")
                grads = torch.autograd.grad(loss_v, arch_params)
                for p, g in zip(arch_params, grads):
                    p.grad = g
                loop.sync_grads(arch_params)
                self.a_opt.step()
                meter.update(len(yv), val_loss=loss_v.item(), val_acc=accuracy(logits_v, yv)[0])
            with torch.no_grad():
                arch_kwargs = self.arch.forward_kwargs()
            logits = self.supernet(x, **arch_kwargs)
            loss = loop.check(F.cross_entropy(logits, y), "training loss")
            loop.weight_step(loss, self.w_opt, params, search.grad_clip)
            meter.update(len(y), train_loss=loss.item(), train_acc=accuracy(logits, y)[0])
        return meter.means()

    def genotype(self) -> Genotype:
        return derive(
            self.arch.derive_weights("normal"),
            self.arch.derive_weights("reduce"),
            primitives=self.supernet.primitives,
            steps=self.supernet.topology.steps,
        )

    def epoch_record(self) -> dict[str, Any]:
        return {f"alpha_entropy_{k}": entropy_per_edge(self.arch.weights(k)) for k in CELL_KINDS}

    def stateful(self) -> dict[str, Any]:
        return {"supernet": self.supernet, "arch": self.arch, "w_opt": self.w_opt, "a_opt": self.a_opt}

    def write_artifacts(self, run_dir: Path) -> list[Path]:
        path = run_dir / "alpha.json"
        from binas.storage.files import write_json

        write_json(
            path,
            {k: self.arch.weights(k).detach().cpu().tolist() for k in CELL_KINDS}
            | {"primitives": list(self.supernet.primitives)},
        )
        return [path]


@register_strategy
class PCDarts(Darts):
    """PC-DARTS: DARTS with partial channels (K) and edge normalisation."""

    name = "pc-darts"
    Config = PCDartsOptions

    def partial_channels(self) -> tuple[int, bool]:
        opts = self.options
        assert isinstance(opts, PCDartsOptions)
        return opts.partial_channels, opts.edge_normalization

    def arch_warmup(self) -> int:
        if self.options.arch_warmup_epochs is not None:
            return self.options.arch_warmup_epochs
        return int(PC_DARTS_WARMUP_FRACTION * self.num_epochs())
