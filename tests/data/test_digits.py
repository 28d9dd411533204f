"""The default data set: sklearn digits, resized, 3 channels, normalised, stratified fixed split."""

from __future__ import annotations

import pytest
import torch

from binas.data import DATASETS, DEFAULT_DATASET, DIGITS_IMAGE_SIZE, DatasetInfo, load_dataset
from binas.errors import DataError, RegistryError

DIGITS_TOTAL = 1797  # sklearn load_digits


def test_default_is_digits_at_16() -> None:
    assert DEFAULT_DATASET == "digits"
    assert DIGITS_IMAGE_SIZE == 16
    assert set(DATASETS.names()) == {"digits", "cifar10", "imagenet", "synthetic"}


def test_shapes_classes_and_normalisation() -> None:
    train = load_dataset("digits", "train")
    assert train.images.shape == (len(train), 3, 16, 16)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert set(train.labels.tolist()) == set(range(10))
    info = train.info
    assert isinstance(info, DatasetInfo) and info.num_classes == 10 and info.in_channels == 3
    assert info.image_size == 16 and len(info.mean) == len(info.std) == 3
    per_channel_mean = train.images.mean(dim=(0, 2, 3))
    per_channel_std = train.images.std(dim=(0, 2, 3))
    assert torch.allclose(per_channel_mean, torch.zeros(3), atol=1e-4)
    assert torch.allclose(per_channel_std, torch.ones(3), atol=1e-2)
    assert torch.equal(train.images[:, 0], train.images[:, 2])  # grey replicated
    image, label = train[0]
    assert image.shape == (3, 16, 16) and label.ndim == 0


def test_split_is_disjoint_stratified_and_uses_train_stats() -> None:
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(train) + len(test) == DIGITS_TOTAL
    assert len(test) == pytest.approx(0.2 * DIGITS_TOTAL, abs=10)
    assert test.info == train.info
    test_share = test.labels.bincount(minlength=10) / (
        train.labels.bincount(minlength=10) + test.labels.bincount(minlength=10)
    )
    assert torch.all((test_share - 0.2).abs() < 0.02)
    rows_train = {tuple(r) for r in train.images[:, 0].flatten(1).tolist()}
    assert not any(tuple(r) in rows_train for r in test.images[:, 0].flatten(1).tolist())


def test_deterministic_and_image_size_32() -> None:
    a, b = load_dataset("digits", "test"), load_dataset("digits", "test")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    a.images.zero_()  # returned tensors are private copies: mutating one does not leak into the next load
    assert not torch.equal(load_dataset("digits", "test").images, a.images)
    big = load_dataset("digits", "train", image_size=32)
    assert big.images.shape[1:] == (3, 32, 32) and big.info.image_size == 32


def test_bad_names() -> None:
    with pytest.raises(RegistryError, match="digits"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_dataset("digits", "val")


def test_in_memory_indexing_forms() -> None:
    ds = load_dataset("digits", "test")
    image, label = ds[torch.tensor(3)]
    assert torch.equal(image, ds.images[3]) and label.item() == ds.labels[3].item()
    images, labels = ds[[3, 0, 3]]
    assert images.shape == (3, 3, 16, 16) and torch.equal(labels, ds.labels[[3, 0, 3]])
    assert torch.equal(ds[torch.tensor([5, 1])][0], ds.images[[5, 1]])
