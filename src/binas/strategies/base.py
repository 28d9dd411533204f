"""The search-strategy interface and the `STRATEGIES` registry.

A strategy owns "what one epoch of search means" and nothing else: the engine
(`binas.engine.searcher.run_search`) owns the epoch loop, progress, checkpoints, exact resume,
the NaN guard, metrics and the outputs (NASLib's optimizer/trainer split).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from binas.config.schema import SearchConfig, SpaceConfig
from binas.data import DatasetInfo
from binas.engine.loop import EpochLoop
from binas.engine.runtime import Runtime
from binas.genotype import Genotype
from binas.registry import Registry


@dataclass(frozen=True)
class NoOptions:
    """A strategy without method-specific options."""


@dataclass
class SearchContext:
    """What a strategy is built from: the search splits, the space and shared settings, the runtime."""

    train_data: Dataset
    val_data: Dataset
    info: DatasetInfo
    space: SpaceConfig
    search: SearchConfig
    runtime: Runtime


class SearchStrategy(ABC):
    """One search method. Subclasses set `name` and `Config` and implement the abstract methods.

    `run_epoch` must draw all randomness from the engine (`loop.batches`, the global RNG the engine
    re-seeds every epoch) or from generators saved in `state_dict`, so that a resumed run repeats an
    uninterrupted one exactly.
    """

    name: ClassVar[str]
    Config: ClassVar[type] = NoOptions
    #: Search epochs when `search.epochs` is null (the DARTS digits default).
    default_epochs: ClassVar[int] = 10

    def __init__(self, ctx: SearchContext, options: Any) -> None:
        self.ctx = ctx
        self.options = options
        self.device = ctx.runtime.device

    def num_epochs(self) -> int:
        """`search.epochs`, or this method's `default_epochs` when it is null (fixed schedules override it)."""
        return self.default_epochs if self.ctx.search.epochs is None else self.ctx.search.epochs

    @abstractmethod
    def run_epoch(self, epoch: int, loop: EpochLoop) -> dict[str, float]:
        """Run one search epoch; return its scalar metrics (losses, accuracies, ...)."""

    @abstractmethod
    def genotype(self) -> Genotype:
        """The architecture the search currently points to."""

    @abstractmethod
    def stateful(self) -> dict[str, Any]:
        """The objects with `state_dict`/`load_state_dict` (supernets, α, optimizers, ...) that a checkpoint
        holds, by checkpoint key. Plain values a method also needs go in an override of the two methods below."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, architecture state, optimizer state (plain data)."""
        return {key: obj.state_dict() for key, obj in self.stateful().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        for key, obj in self.stateful().items():
            obj.load_state_dict(state[key])

    def epoch_record(self) -> dict[str, Any]:
        """Extra JSON-able per-epoch state for metrics.jsonl (e.g. alpha entropies)."""
        return {}

    def finished(self) -> bool:
        """True when the strategy's own schedule is over before `num_epochs` (e.g. all ops pruned)."""
        return False

    def write_artifacts(self, run_dir: Path) -> list[Path]:
        """Write method-specific outputs (alpha, indicator tables, plots) at the end; return their paths."""
        return []


STRATEGIES: Registry[type[SearchStrategy]] = Registry("search method")


def register_strategy(cls: type[SearchStrategy]) -> type[SearchStrategy]:
    """Class decorator: register a strategy under its `name`."""
    STRATEGIES.register(cls.name, cls)
    return cls


def entropy_per_edge(weights: Tensor) -> float:
    """Mean entropy (nats) of the per-edge op distributions; log(M) means undecided, 0 means decided."""
    p = weights.detach().clamp_min(1e-12)
    return float(-(p * p.log()).sum(dim=-1).mean())


def build_weight_optimizer(params: list[nn.Parameter], search: SearchConfig) -> torch.optim.Optimizer:
    """SGD with momentum (DARTS) or Adam, from the shared search settings."""
    if search.w_optimizer == "adam":
        return torch.optim.Adam(params, lr=search.w_lr, weight_decay=search.w_weight_decay)
    return torch.optim.SGD(params, lr=search.w_lr, momentum=search.w_momentum, weight_decay=search.w_weight_decay)


def build_arch_optimizer(params: list[nn.Parameter], search: SearchConfig) -> torch.optim.Optimizer:
    """Adam on the architecture parameters (DARTS: lr 3e-4, betas (0.5, 0.999), weight decay 1e-3)."""
    return torch.optim.Adam(params, lr=search.arch_lr, betas=search.arch_betas, weight_decay=search.arch_weight_decay)


def cosine_lr(base: float, minimum: float, epoch: int, total: int) -> float:
    """Cosine annealing from `base` at epoch 0 to `minimum` at epoch `total` (a pure function of epoch,
    so resuming needs no scheduler state)."""
    import math

    if total <= 0:
        return base
    return minimum + 0.5 * (base - minimum) * (1 + math.cos(math.pi * epoch / total))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def build_supernet(ctx: SearchContext, *, binary: bool, partial_channels: int = 1) -> nn.Module:
    """The search supernet of `ctx.space` on the run's device: real, or 1-bit with `space.policy`."""
    from binas.engine.runtime import preferred_memory_format
    from binas.quant.policy import BinarizationPolicy
    from binas.space.supernet import Supernet

    if getattr(ctx.space, "kind", "darts") != "darts":
        from binas.errors import ConfigError

        raise ConfigError(f"this search method supports only the darts cell space, not space.kind={ctx.space.kind!r}")
    policy = ctx.space.binary_policy() if binary else BinarizationPolicy.real()
    net = Supernet(ctx.space.supernet(partial_channels), num_classes=ctx.info.num_classes,
                   in_channels=ctx.info.in_channels, policy=policy)
    return net.to(ctx.runtime.device, memory_format=preferred_memory_format(ctx.runtime.device))
