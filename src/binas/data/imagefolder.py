"""ImageNet (or any class-folder tree) read lazily with Pillow, so torchvision stays optional.

Layout: `data_dir/train/<class>/*.JPEG` and `data_dir/val/<class>/*.JPEG`. Classes are the sorted folder
names of `train/` (of the split's own folder when `train/` is absent), so labels agree across splits.
Each image is decoded only when indexed: ImageNet does not fit in memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from binas.data.base import PIXEL_MAX, DatasetInfo, ImageDataset, check_split, normalize_
from binas.errors import DataError

logger = logging.getLogger(__name__)

IMAGENET_IMAGE_SIZE = 224  # standard ImageNet crop (Krizhevsky et al., 2012; He et al., 2016)
IMAGENET_RESIZE_RATIO = 256 / 224  # shorter side resized to 256 before the 224 center crop (same sources)
IMAGENET_CHANNELS = 3
# Per-channel mean/std of the ImageNet training images in [0, 1] (the torchvision / DARTS constants).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = frozenset({".jpeg", ".jpg", ".png", ".bmp", ".webp"})
SPLIT_FOLDERS = {"train": "train", "test": "val"}  # ImageNet's labelled test set is its validation set


def _class_names(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def scan_class_folders(split_dir: Path, classes: list[str]) -> list[tuple[Path, int]]:
    """(file, label) for every image under `split_dir/<class>/`, in a stable (sorted) order."""
    index = {name: label for label, name in enumerate(classes)}
    samples: list[tuple[Path, int]] = []
    for name in _class_names(split_dir):
        if name not in index:
            raise DataError(f"class folder {split_dir / name} is not one of the {len(classes)} training classes")
        files = sorted(p for p in (split_dir / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        samples.extend((path, index[name]) for path in files)
    return samples


def center_crop_resize(path: Path, size: int, resize_ratio: float = IMAGENET_RESIZE_RATIO) -> Tensor:
    """Decode `path` as RGB, resize its shorter side to `round(size * resize_ratio)`, center-crop size×size.

    Returns a C×H×W float tensor in [0, 1].
    """
    from PIL import Image

    short = max(size, round(size * resize_ratio))
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            width, height = img.size
            scale = short / min(width, height)
            new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
            img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - size) // 2, (new_h - size) // 2
            img = img.crop((left, top, left + size, top + size))
            array = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
        raise DataError(f"cannot read image {path}: {err}") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(PIXEL_MAX)


class ImageFolderDataset(ImageDataset):
    """A lazily decoded class-folder data set; `labels` (N int64) is held, the images are not."""

    def __init__(self, samples: list[tuple[Path, int]], classes: list[str], info: DatasetInfo) -> None:
        self.samples = samples
        self.classes = classes
        self.labels = torch.tensor([label for _, label in samples], dtype=torch.long)
        self.info = info

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        path, label = self.samples[index]
        image = center_crop_resize(path, self.info.image_size).unsqueeze(0)
        return normalize_(image, self.info.mean, self.info.std)[0], self.labels[index]

    def __repr__(self) -> str:
        return f"ImageFolderDataset({self.info.name}, n={len(self)}, classes={len(self.classes)})"


def load_imagenet(
    split: str = "train", *, data_dir: str | None = None, image_size: int | None = None
) -> ImageFolderDataset:
    """ImageNet split `split` ("train" -> `train/`, "test" -> `val/`) from a local class-folder tree."""
    check_split("imagenet", split)
    if data_dir is None:
        raise DataError("imagenet needs data_dir: a folder holding train/<class>/*.JPEG and val/<class>/*.JPEG")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"imagenet data folder not found: {root}")
    split_dir = root / SPLIT_FOLDERS[split]
    if not split_dir.is_dir():
        raise DataError(f"imagenet split folder not found: {split_dir}")
    train_dir = root / SPLIT_FOLDERS["train"]
    classes = _class_names(train_dir if train_dir.is_dir() else split_dir)
    samples = scan_class_folders(split_dir, classes) if classes else []
    if not samples:
        raise DataError(f"no images found in class folders under {split_dir}")
    size = IMAGENET_IMAGE_SIZE if image_size is None else int(image_size)
    if size <= 0:
        raise DataError(f"image_size must be a positive integer, got {size}")
    info = DatasetInfo("imagenet", len(classes), IMAGENET_CHANNELS, size, IMAGENET_MEAN, IMAGENET_STD)
    logger.debug("indexed %d imagenet %s images in %d classes under %s", len(samples), split, len(classes), split_dir)
    return ImageFolderDataset(samples, classes, info)
