"""`EpochLoop`: what a strategy may ask of the engine inside one epoch.

Batches arrive on the run's device, in an order fixed by (seed, epoch, stream), augmented when asked,
with a progress bar; losses are checked for NaN/inf; gradients are averaged over torchrun ranks.
Strategies never build loaders, pick devices or draw progress bars themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm import tqdm

from binas.data import make_loader, random_crop_flip
from binas.engine.runtime import Runtime, all_reduce_mean, preferred_memory_format
from binas.errors import NonFiniteLossError
from binas.seeds import derive_seed

Batch = tuple[Tensor, Tensor]
T = TypeVar("T")

#: Crop padding as a fraction of the image side: CIFAR's standard 4 pixels at 32x32 (DARTS).
CROP_PADDING_FRACTION = 4 / 32


@dataclass
class EpochLoop:
    """Per-epoch services handed to `SearchStrategy.run_epoch`.

    Attributes:
        runtime: device, process group and seed of the run.
        epoch: the epoch being run (0-based).
        batch_size: default mini-batch size, global: under torchrun each rank draws batch_size // world_size
            (as `train.batch_size`), so a search means the same thing on 1 or N processes.
        augment: apply random crop + flip to batches drawn with `augment=True` (None: the data set's default).
        progress: show tqdm bars.
    """

    runtime: Runtime
    epoch: int
    batch_size: int
    augment: bool | None = None
    progress: bool = True
    num_workers: int = 0
    _streams: dict[str, int] = field(default_factory=dict)

    def _seed(self, stream: str) -> int:
        # A stream used twice in one epoch gets a fresh, still deterministic, seed each time.
        count = self._streams.get(stream, 0)
        self._streams[stream] = count + 1
        return derive_seed(self.runtime.seed, "epoch", self.epoch, stream, count)

    def batches(
        self,
        dataset: Dataset,
        *,
        stream: str,
        shuffle: bool = True,
        augment: bool = False,
        batch_size: int | None = None,
        desc: str | None = None,
        max_batches: int | None = None,
        show_progress: bool = True,
    ) -> Iterator[Batch]:
        """Yield (x, y) batches of `dataset` on the device; `stream` names an independent random order."""
        seed = self._seed(stream)
        world = self.runtime.dist.world_size
        per_rank = max(1, (batch_size or self.batch_size) // world)
        loader = make_loader(
            dataset,
            per_rank,
            shuffle=shuffle,
            seed=seed,
            epoch=self.epoch,
            distributed=self.runtime.dist.is_distributed,
            num_workers=self.num_workers,
        )
        generator = torch.Generator().manual_seed(derive_seed(seed, "augment"))
        total = len(loader) if max_batches is None else min(len(loader), max_batches)
        bar = tqdm(
            loader,
            total=total,
            desc=desc or stream,
            leave=False,
            disable=not (self.progress and show_progress),
            dynamic_ncols=True,
        )
        info = getattr(dataset, "info", None) or getattr(getattr(dataset, "dataset", None), "info", None)
        flip = info.hflip if info is not None else True
        use_augment = self.augment if self.augment is not None else (info.augment_by_default if info else True)
        device = self.runtime.device
        memory_format = preferred_memory_format(device)
        for i, (x, y) in enumerate(bar):
            if max_batches is not None and i >= max_batches:
                break
            if augment and use_augment:
                x = random_crop_flip(
                    x, generator, padding=max(1, round(x.shape[-1] * CROP_PADDING_FRACTION)), flip=flip
                )
            yield x.to(device, memory_format=memory_format, non_blocking=True), y.to(device, non_blocking=True)
        bar.close()

    def paired(
        self, first: Dataset, second: Dataset, *, augment_first: bool = True, desc: str | None = None
    ) -> Iterator[tuple[Batch, Batch]]:
        """DARTS-style iteration: a batch of `first` (weights) with a batch of `second` (architecture)."""
        cycled = self._cycle(second)
        for b1 in self.batches(first, stream="paired-first", augment=augment_first, desc=desc):
            yield b1, next(cycled)

    def _cycle(self, dataset: Dataset) -> Iterator[Batch]:
        """Endless batches of `dataset` without a progress bar (the paired split may be shorter)."""
        while True:
            yield from self.batches(dataset, stream="paired-second", show_progress=False)

    def check(self, loss: Tensor, what: str = "loss") -> Tensor:
        """Raise `NonFiniteLossError` if `loss` is NaN or infinite (the NaN guard)."""
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"{what} became {value} at epoch {self.epoch}; lower the learning rate or check the data "
                "(the last completed epoch's checkpoint is kept)"
            )
        return loss

    def weight_step(
        self,
        loss: Tensor,
        optimizer: torch.optim.Optimizer,
        params: Sequence[nn.Parameter],
        clip: float | None,
        *,
        before_clip: Callable[[], T] | None = None,
    ) -> T | None:
        """One weight step: zero the gradients, backward, average them over ranks, clip their norm to `clip`
        (None or 0: no clipping), step. `before_clip` is called on the synced, unclipped gradients (e.g. to
        log a gradient balance) and its result returned."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.sync_grads(params)
        seen = before_clip() if before_clip is not None else None
        if clip:
            nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        return seen

    def sync_grads(self, params: Iterable[nn.Parameter] | Iterable[Tensor]) -> None:
        """Average gradients over torchrun ranks (no-op in one process), so every rank steps identically."""
        if not self.runtime.dist.is_distributed:
            return
        for p in params:
            if p.grad is not None:
                p.grad.copy_(all_reduce_mean(p.grad))


def topk_correct(logits: Tensor, target: Tensor, topk: tuple[int, ...] = (1,)) -> list[int]:
    """How many samples have their label among the top-k logits, per k (k above the class count: all)."""
    k_max = min(max(topk), logits.shape[1])
    hits = logits.topk(k_max, dim=1).indices.eq(target[:, None])
    return [int(hits[:, : min(k, k_max)].any(dim=1).sum()) for k in topk]


def accuracy(logits: Tensor, target: Tensor, topk: tuple[int, ...] = (1,)) -> list[float]:
    """Top-k accuracies in percent."""
    return [100.0 * c / max(len(target), 1) for c in topk_correct(logits, target, topk)]


class Meter:
    """Running sample-weighted means of named metrics."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def update(self, n: int = 1, **values: float) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value) * n
            self.counts[key] = self.counts.get(key, 0) + n

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / max(self.counts[k], 1) for k in self.sums}
