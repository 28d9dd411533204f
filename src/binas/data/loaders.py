"""Search splits and deterministic DataLoaders.

`split_train_val` makes the DARTS-style search split (weights train on one part of the train set, the
architecture on the other). `make_loader` builds a DataLoader whose order depends only on (seed, epoch),
with a `DistributedSampler` under torch.distributed. For in-memory data sets it hands whole index lists to
the data set, so a batch is one tensor indexing operation instead of B `__getitem__` calls + a stack.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler, Subset

from binas.data.base import InMemoryImageDataset
from binas.errors import ConfigError
from binas.seeds import derive_seed

logger = logging.getLogger(__name__)

SEARCH_TRAIN_PORTION = 0.5  # DARTS (Liu et al., 2019): half of the train set for w, half for alpha
_SPLIT_STREAM = "split"  # derive_seed stream names: the split and the shuffles never share a random stream
_SHUFFLE_STREAM = "shuffle"
_LOADER_STREAM = "loader"


def split_train_val(
    dataset: Dataset, train_portion: float = SEARCH_TRAIN_PORTION, seed: int = 0
) -> tuple[Subset, Subset]:
    """Shuffle the indices of `dataset` with `seed` and cut them at `train_portion`.

    The first part trains the network weights, the second the architecture parameters (DARTS). The same
    seed always gives the same, disjoint split. Both parts are `Subset`s of `dataset`, so in-memory data
    sets keep the fast batch path of `make_loader`.
    """
    n = len(dataset)  # type: ignore[arg-type]
    cut = math.floor(train_portion * n)
    if not 0.0 < train_portion < 1.0 or cut == 0 or cut == n:
        raise ConfigError(f"train_portion must leave both search splits non-empty, got {train_portion} of {n} samples")
    generator = torch.Generator().manual_seed(derive_seed(seed, _SPLIT_STREAM))
    order = torch.randperm(n, generator=generator).tolist()
    return Subset(dataset, order[:cut]), Subset(dataset, order[cut:])


class EpochShuffleSampler(Sampler[int]):
    """A random permutation of `range(n)` that depends only on (seed, epoch).

    Unlike `RandomSampler(generator=...)`, iterating it twice gives the same order, so re-creating or
    re-iterating a loader (for example after `--resume`) reproduces the epoch exactly.
    """

    def __init__(self, n: int, seed: int, epoch: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, _SHUFFLE_STREAM, self.epoch))
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


def supports_batch_indexing(dataset: Dataset) -> bool:
    """True if `dataset[list_of_indices]` returns a whole batch (in-memory data sets and their Subsets)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return isinstance(dataset, InMemoryImageDataset)


def _keep_batch(batch: Any) -> Any:
    """Collate function of the fast path: the data set already returned a collated batch."""
    return batch


def _base_sampler(dataset: Dataset, *, shuffle: bool, seed: int, epoch: int, distributed: bool) -> Sampler[int]:
    n = len(dataset)  # type: ignore[arg-type]
    if distributed:
        if not torch.distributed.is_available() or not torch.distributed.is_initialized():
            raise RuntimeError("make_loader(distributed=True) needs an initialised torch.distributed process group")
        sampler: DistributedSampler[int] = DistributedSampler(dataset, shuffle=shuffle, seed=seed)
        sampler.set_epoch(epoch)
        return sampler
    if shuffle:
        return EpochShuffleSampler(n, seed, epoch)
    return torch.utils.data.SequentialSampler(range(n))


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    epoch: int = 0,
    drop_last: bool = False,
    distributed: bool = False,
    num_workers: int = 0,
) -> DataLoader:
    """A DataLoader whose batches (and their order) are a pure function of (dataset, seed, epoch).

    Build one per epoch (it is cheap). With `distributed=True` each rank gets its `DistributedSampler`
    shard (seeded with `seed`, `set_epoch(epoch)` already called; the last shard is padded with repeated
    samples, as `DistributedSampler` does). Batches are `(images, labels)` tensors on the CPU.

    In-memory data sets (and `Subset`s of them) take a fast path: a `BatchSampler` is passed as the
    sampler and the data set indexes its tensors with the whole index list, so the loader yields
    ready-made batches (`loader.batch_size` is then `None`; `len(loader)` is still the number of batches).
    """
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be positive, got {batch_size}")
    sampler = _base_sampler(dataset, shuffle=shuffle, seed=seed, epoch=epoch, distributed=distributed)
    # An explicit generator stops the DataLoader from drawing its worker base seed from torch's global RNG.
    generator = torch.Generator().manual_seed(derive_seed(seed, _LOADER_STREAM, epoch))
    if supports_batch_indexing(dataset):
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=BatchSampler(sampler, batch_size, drop_last),
            collate_fn=_keep_batch,
            num_workers=num_workers,
            generator=generator,
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        generator=generator,
    )
