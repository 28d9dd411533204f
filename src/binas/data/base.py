"""What every data set is: `DatasetInfo`, the `ImageDataset` base class and the in-memory variant.

Small data sets (digits, CIFAR-10, synthetic) are held as two tensors so that a whole batch is one
indexing operation (see `binas.data.loaders.make_loader`); large ones (ImageNet) are read lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from binas.errors import DataError

SPLITS = ("train", "test")
"""The split names every loader in `DATASETS` accepts."""
PIXEL_MAX = 255.0  # 8-bit image files: divide by this to map pixels to [0, 1]


@dataclass(frozen=True)
class DatasetInfo:
    """Facts a model and a strategy need about a data set, independent of how it is stored.

    Attributes:
        name: registry name (`digits`, `cifar10`, ...).
        num_classes: number of labels; labels are `0 .. num_classes - 1`.
        in_channels: image channels (3 for every packaged data set).
        image_size: height == width of the images the data set yields.
        mean, std: per-channel constants already subtracted/divided out of the images.
        hflip: whether horizontal flips are a valid augmentation (not for digits: a flipped 2 is no 2).
        augment_by_default: whether crop/flip augmentation is on when the config leaves it unset.
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool = True
    augment_by_default: bool = True


class ImageDataset(Dataset):
    """A `torch.utils.data.Dataset` of `(image C×H×W float32, label int64)` pairs with an `info`."""

    info: DatasetInfo

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


class InMemoryImageDataset(ImageDataset):
    """Images (N×C×H×W float32, normalised) and labels (N int64) held as tensors.

    `dataset[i]` gives one pair; `dataset[list_of_indices]` (or a LongTensor) gives a whole batch in one
    indexing operation, which is what the fast path of `make_loader` relies on.
    """

    def __init__(self, images: Tensor, labels: Tensor, info: DatasetInfo) -> None:
        if images.ndim != 4 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"images must be N×C×H×W and labels N, got {tuple(images.shape)} and {tuple(labels.shape)}"
            )
        self.images = images.float()
        self.labels = labels.long()
        self.info = info

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int | Sequence[int] | Tensor) -> tuple[Tensor, Tensor]:
        if isinstance(index, (list, tuple)) or (isinstance(index, Tensor) and index.ndim == 1):
            # index_select copies whole rows; it is several times faster than advanced indexing on CPU.
            rows = torch.as_tensor(index, dtype=torch.long)
            return self.images.index_select(0, rows), self.labels.index_select(0, rows)
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name}, n={len(self)}, shape={tuple(self.images.shape[1:])})"


def check_split(name: str, split: str) -> None:
    """Raise a one-line `DataError` unless `split` is one of `SPLITS`."""
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}' for data set '{name}'; choose one of: {', '.join(SPLITS)}")


def resize(images: Tensor, size: int) -> Tensor:
    """Bilinearly resize N×C×H×W images to N×C×size×size (antialiased when shrinking).

    Bilinear interpolation is an affine per-channel operation, so it commutes with mean/std
    normalisation; callers may resize before or after normalising.
    """
    if size <= 0:
        raise DataError(f"image_size must be a positive integer, got {size}")
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    shrinking = size < min(images.shape[-2:])
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)


def normalize_(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Subtract `mean` and divide by `std` per channel, in place, and return `images`."""
    m = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return images.sub_(m).div_(s)
