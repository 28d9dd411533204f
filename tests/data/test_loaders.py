"""Search split and deterministic loaders (plain, fast in-memory path, DistributedSampler)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, TensorDataset

from binas.data import (
    DatasetInfo,
    InMemoryImageDataset,
    load_dataset,
    make_loader,
    split_train_val,
    supports_batch_indexing,
)
from binas.errors import ConfigError


def _order(loader: DataLoader) -> list[int]:
    return [int(v) for _, labels in loader for v in labels]


def _indexed(n: int) -> TensorDataset:
    """A data set whose 'label' is the sample index, so a loader's order can be read off its batches."""
    return TensorDataset(torch.zeros(n, 1), torch.arange(n))


def _indexed_in_memory(n: int) -> InMemoryImageDataset:
    """The same, as an in-memory image data set (takes the fast batch path)."""
    info = DatasetInfo("indexed", n, 1, 1, (0.0,), (1.0,))
    return InMemoryImageDataset(torch.zeros(n, 1, 1, 1), torch.arange(n), info)


def test_split_is_deterministic_disjoint_and_complete() -> None:
    ds = _indexed(101)
    train, val = split_train_val(ds, 0.5, seed=3)
    assert len(train) == 50 and len(val) == 51
    assert set(train.indices).isdisjoint(val.indices) and set(train.indices) | set(val.indices) == set(range(101))
    again, _ = split_train_val(ds, 0.5, seed=3)
    other, _ = split_train_val(ds, 0.5, seed=4)
    assert train.indices == again.indices and train.indices != other.indices
    assert train.indices != sorted(train.indices)  # shuffled, not just the first half


@pytest.mark.parametrize("portion", [0.0, 1.0, 1.5, 0.001])
def test_split_rejects_empty_parts(portion: float) -> None:
    with pytest.raises(ConfigError, match="train_portion"):
        split_train_val(_indexed(10), portion)


@pytest.mark.parametrize("make", [_indexed, _indexed_in_memory])
def test_order_depends_on_seed_and_epoch_only(make) -> None:
    dataset = make(37)
    first = _order(make_loader(dataset, 8, shuffle=True, seed=1, epoch=0))
    assert sorted(first) == list(range(37))
    loader = make_loader(dataset, 8, shuffle=True, seed=1, epoch=0)
    assert _order(loader) == first and _order(loader) == first  # re-iterating repeats the epoch
    assert _order(make_loader(dataset, 8, shuffle=True, seed=1, epoch=1)) != first
    assert _order(make_loader(dataset, 8, shuffle=True, seed=2, epoch=0)) != first
    assert _order(make_loader(dataset, 8, shuffle=False, seed=1)) == list(range(37))


def test_loader_leaves_global_rng_alone() -> None:
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    for _ in make_loader(_indexed(20), 4, shuffle=True, seed=0):
        pass
    assert torch.equal(torch.rand(1), expected)


def test_fast_path_yields_same_batches_as_plain_loading() -> None:
    train = load_dataset("digits", "train")
    part, _ = split_train_val(train, 0.5, seed=0)
    assert supports_batch_indexing(train) and supports_batch_indexing(part)
    assert not supports_batch_indexing(_indexed(3))
    loader = make_loader(part, 64, shuffle=True, seed=5, epoch=2, drop_last=True)
    assert len(loader) == len(part) // 64
    reference = DataLoader(part, batch_size=64, sampler=loader.sampler.sampler, drop_last=True)
    batches = list(loader)
    assert len(batches) == len(loader)
    for (x, y), (x_ref, y_ref) in zip(batches, reference, strict=True):
        assert x.shape == (64, 3, 16, 16) and y.dtype == torch.int64
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)


def test_drop_last_and_bad_batch_size() -> None:
    assert [len(y) for _, y in make_loader(_indexed(10), 4, shuffle=False, seed=0)] == [4, 4, 2]
    assert [len(y) for _, y in make_loader(_indexed(10), 4, shuffle=False, seed=0, drop_last=True)] == [4, 4]
    with pytest.raises(ConfigError, match="batch_size"):
        make_loader(_indexed(10), 0, shuffle=False, seed=0)


def test_distributed_needs_a_process_group() -> None:
    if dist.is_initialized():  # pragma: no cover - another test left a group behind
        pytest.skip("a process group is already initialised")
    with pytest.raises(RuntimeError, match="process group"):
        make_loader(_indexed(10), 4, shuffle=True, seed=0, distributed=True)


def test_distributed_sampler_with_one_gloo_process(tmp_path: Path) -> None:
    if dist.is_initialized():  # pragma: no cover
        pytest.skip("a process group is already initialised")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        for dataset in (_indexed(23), _indexed_in_memory(23)):
            loader = make_loader(dataset, 5, shuffle=True, seed=3, epoch=0, distributed=True)
            first = _order(loader)
            assert sorted(first) == list(range(23)) and first == _order(loader)
            assert _order(make_loader(dataset, 5, shuffle=True, seed=3, epoch=1, distributed=True)) != first
            assert _order(make_loader(dataset, 5, shuffle=True, seed=3, epoch=0, distributed=True)) == first
    finally:
        dist.destroy_process_group()
