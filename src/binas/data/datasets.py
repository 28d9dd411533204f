"""The `DATASETS` registry and `load_dataset`, plus the two data sets that need no files.

`digits` (scikit-learn's bundled 8×8 handwritten digits) is the project default: it ships with
scikit-learn, so a search runs offline, on CPU, in seconds. `synthetic` is a random but learnable data
set for tests. `cifar10` and `imagenet` read local files (see `binas.data.cifar`, `binas.data.imagefolder`).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from binas.data.base import (
    DatasetInfo,
    ImageDataset,
    InMemoryImageDataset,
    check_split,
    normalize_,
    resize,
)
from binas.data.cifar import load_cifar10
from binas.data.imagefolder import load_imagenet
from binas.registry import Registry
from binas.seeds import derive_seed

logger = logging.getLogger(__name__)

DEFAULT_DATASET = "digits"

DIGITS_NUM_CLASSES = 10
DIGITS_MAX_PIXEL = 16.0  # sklearn load_digits docs: each pixel is an integer in 0..16
DIGITS_IMAGE_SIZE = 16  # project default: leaves room for the stem and two reduction cells (16 -> 8 -> 4)
DIGITS_CHANNELS = 3  # grey replicated to RGB so every stem (CIFAR/ImageNet) takes it unchanged
DIGITS_TEST_FRACTION = 0.2  # digits has no official split; ours is a stratified 80/20
DIGITS_SPLIT_SEED = 20_190_101  # fixed, independent of the run seed, so train/test never change

SYNTHETIC_NUM_CLASSES = 10
SYNTHETIC_TRAIN_SAMPLES = 512
SYNTHETIC_TEST_SAMPLES = 128
SYNTHETIC_IMAGE_SIZE = 16
SYNTHETIC_CHANNELS = 3
SYNTHETIC_PROTOTYPE_GRID = 4  # class prototypes are drawn at 4×4 and upsampled, so they are smooth
SYNTHETIC_NOISE_STD = 0.5  # per-pixel noise around the unit-variance class prototype: easy to fit
_SYNTHETIC_PROTOTYPE_STREAM = "synthetic-prototypes"
_SYNTHETIC_SPLIT_STREAMS = {"train": "synthetic-train", "test": "synthetic-test"}


class DatasetLoader(Protocol):
    """What a `DATASETS` entry is: a function building one split of one data set."""

    def __call__(self, split: str, *, data_dir: str | None, image_size: int | None) -> ImageDataset: ...


DATASETS: Registry[DatasetLoader] = Registry("data set")


def load_dataset(
    name: str = DEFAULT_DATASET,
    split: str = "train",
    *,
    data_dir: str | None = None,
    image_size: int | None = None,
) -> ImageDataset:
    """Build split `split` ("train" or "test") of the registered data set `name`.

    Args:
        name: a `DATASETS` name; an unknown one raises `RegistryError` listing the choices.
        split: "train" or "test" (ImageNet's "test" is its `val/` folder). The search's own train/val
            split is made from "train" by `binas.data.loaders.split_train_val`.
        data_dir: where the files are, for data sets that need files (cifar10, imagenet).
        image_size: output height == width; `None` keeps the data set's default.
    """
    loader = DATASETS.get(name)
    check_split(name, split)
    dataset = loader(split, data_dir=data_dir, image_size=image_size)
    info = dataset.info
    logger.info(
        "loaded %s/%s: %d images, %d classes, %dx%dx%d",
        name,
        split,
        len(dataset),
        info.num_classes,
        info.in_channels,
        info.image_size,
        info.image_size,
    )
    return dataset


# --------------------------------------------------------------------------------------------- digits


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The raw digits (N×8×8 float in [0, 1], labels N), read once per process."""
    from sklearn import datasets as sklearn_datasets  # lazy: importing scikit-learn takes about a second

    bunch = sklearn_datasets.load_digits()
    return (bunch.images / DIGITS_MAX_PIXEL).astype(np.float32), bunch.target.astype(np.int64)


@lru_cache(maxsize=1)
def _digits_split_indices() -> dict[str, np.ndarray]:
    """Stratified, seeded 80/20 split: per class, a fixed permutation puts the first 20 % in test."""
    _, labels = _digits_arrays()
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    test: list[np.ndarray] = []
    for cls in range(DIGITS_NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == cls))
        test.append(members[: round(len(members) * DIGITS_TEST_FRACTION)])
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[np.concatenate(test)] = True
    return {"train": np.flatnonzero(~is_test), "test": np.flatnonzero(is_test)}


def _digits_grey(split: str, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as N×1×size×size grey images in [0, 1] and labels."""
    images, labels = _digits_arrays()
    index = _digits_split_indices()[split]
    grey = torch.from_numpy(images[index]).unsqueeze(1)
    return resize(grey, image_size), torch.from_numpy(labels[index])


@lru_cache(maxsize=8)
def _digits_stats(image_size: int) -> tuple[float, float]:
    """Mean and std of the (resized) train split: the normalisation constants, computed once."""
    grey, _ = _digits_grey("train", image_size)
    return float(grey.mean()), float(grey.std())


def load_digits(
    split: str = "train", *, data_dir: str | None = None, image_size: int | None = None
) -> InMemoryImageDataset:
    """scikit-learn's 1797 handwritten digits, resized to `image_size` (default 16), as 3-channel images.

    `data_dir` is ignored: the data ships inside scikit-learn. Both splits are normalised with the train
    split's statistics.
    """
    check_split("digits", split)
    size = DIGITS_IMAGE_SIZE if image_size is None else int(image_size)
    grey, labels = _digits_grey(split, size)
    mean, std = _digits_stats(size)
    images = normalize_(grey.repeat(1, DIGITS_CHANNELS, 1, 1), [mean] * DIGITS_CHANNELS, [std] * DIGITS_CHANNELS)
    info = DatasetInfo(
        "digits",
        DIGITS_NUM_CLASSES,
        DIGITS_CHANNELS,
        size,
        (mean,) * DIGITS_CHANNELS,
        (std,) * DIGITS_CHANNELS,
        hflip=False,
        augment_by_default=False,  # measured: it lowers retrained digits accuracy (README, training)
    )
    return InMemoryImageDataset(images, labels, info)


# ------------------------------------------------------------------------------------------ synthetic


def make_synthetic(
    num_samples: int = SYNTHETIC_TRAIN_SAMPLES,
    *,
    num_classes: int = SYNTHETIC_NUM_CLASSES,
    image_size: int = SYNTHETIC_IMAGE_SIZE,
    in_channels: int = SYNTHETIC_CHANNELS,
    seed: int = 0,
    split: str = "train",
    noise_std: float = SYNTHETIC_NOISE_STD,
) -> InMemoryImageDataset:
    """A random, learnable data set: each image is its class's smooth prototype plus Gaussian noise.

    The prototypes depend only on `seed` (and the shape), so the "train" and "test" splits of one seed
    share classes while their samples are drawn from different streams. Classes are balanced.
    """
    check_split("synthetic", split)
    gen = torch.Generator().manual_seed(derive_seed(seed, _SYNTHETIC_PROTOTYPE_STREAM))
    grid = min(SYNTHETIC_PROTOTYPE_GRID, image_size)
    coarse = torch.randn(num_classes, in_channels, grid, grid, generator=gen)
    prototypes = resize(coarse, image_size)
    prototypes = (prototypes - prototypes.mean(dim=(1, 2, 3), keepdim=True)) / prototypes.std(
        dim=(1, 2, 3), keepdim=True
    ).clamp_min(torch.finfo(torch.float32).eps)

    gen = torch.Generator().manual_seed(derive_seed(seed, _SYNTHETIC_SPLIT_STREAMS[split]))
    labels = (torch.arange(num_samples) % num_classes)[torch.randperm(num_samples, generator=gen)]
    noise = torch.randn(num_samples, in_channels, image_size, image_size, generator=gen)
    images = prototypes[labels] + noise_std * noise
    info = DatasetInfo("synthetic", num_classes, in_channels, image_size, (0.0,) * in_channels, (1.0,) * in_channels)
    return InMemoryImageDataset(images, labels, info)


def load_synthetic(
    split: str = "train", *, data_dir: str | None = None, image_size: int | None = None
) -> InMemoryImageDataset:
    """The registered `synthetic` data set: `make_synthetic` with its defaults (seed 0)."""
    num_samples = SYNTHETIC_TRAIN_SAMPLES if split == "train" else SYNTHETIC_TEST_SAMPLES
    size = SYNTHETIC_IMAGE_SIZE if image_size is None else int(image_size)
    return make_synthetic(num_samples, image_size=size, split=split)


DATASETS.register("digits", load_digits)
DATASETS.register("cifar10", load_cifar10)
DATASETS.register("imagenet", load_imagenet)
DATASETS.register("synthetic", load_synthetic)


def load_training_set(
    name: str = DEFAULT_DATASET,
    *,
    data_dir: str | None = None,
    image_size: int | None = None,
    max_samples: int | None = None,
) -> ImageDataset | Subset:
    """The "train" split of `name`, truncated to its first `max_samples` samples when that is set (quick
    runs on big data sets); search and retraining both draw from it."""
    ds = load_dataset(name, "train", data_dir=data_dir, image_size=image_size)
    if max_samples is not None and max_samples < len(ds):
        return Subset(ds, list(range(max_samples)))
    return ds


def dataset_info(dataset: Dataset) -> DatasetInfo:
    """The `DatasetInfo` of a data set or of a `Subset` of one."""
    info = getattr(dataset, "info", None) or getattr(getattr(dataset, "dataset", None), "info", None)
    if info is None:
        raise TypeError(f"{type(dataset).__name__} carries no DatasetInfo")
    return info
