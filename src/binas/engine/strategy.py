"""The interface the search engine drives: `SearchStrategy` and what it is built from (`SearchContext`).

A strategy owns "what one epoch of search means" and nothing else: the engine
(`binas.engine.searcher.run_search`) owns the epoch loop, progress, checkpoints, exact resume,
the NaN guard, metrics and the outputs (NASLib's optimizer/trainer split). The implementations live
in `binas.strategies`, registered in `STRATEGIES`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from torch.utils.data import Dataset

from binas.config.schema import SearchConfig, SpaceConfig
from binas.data import DatasetInfo
from binas.engine.loop import EpochLoop
from binas.engine.runtime import Runtime
from binas.genotype import Genotype

OptionsT = TypeVar("OptionsT")


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


class SearchStrategy(ABC, Generic[OptionsT]):
    """One search method. Subclasses set `name` and `Config` and implement the abstract methods.

    `run_epoch` must draw all randomness from the engine (`loop.batches`, the global RNG the engine
    re-seeds every epoch) or from generators saved in `state_dict`, so that a resumed run repeats an
    uninterrupted one exactly.
    """

    name: ClassVar[str]
    Config: ClassVar[type] = NoOptions
    #: Search epochs when `search.epochs` is null (the DARTS digits default).
    default_epochs: ClassVar[int] = 10
    #: False for methods whose own schedule sets the length (CP-NAS, BNAS): `search.epochs` is then
    #: rejected instead of silently ignored.
    uses_search_epochs: ClassVar[bool] = True
    #: False for methods that fix the precision themselves (DCP-NAS, CP-NAS: a real Parent, a 1-bit Child):
    #: `search.binary` is then rejected instead of silently ignored.
    uses_search_binary: ClassVar[bool] = True

    def __init__(self, ctx: SearchContext, options: OptionsT) -> None:
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
