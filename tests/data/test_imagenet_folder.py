"""ImageNet-style class folders read lazily with PIL (no torchvision)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from binas.data import IMAGENET_MEAN, IMAGENET_STD, ImageFolderDataset, load_dataset
from binas.errors import DataError

CLASSES = ("n02", "n01", "n03")  # deliberately unsorted: labels must follow sorted folder names


def _write(path: Path, color: tuple[int, int, int], size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


@pytest.fixture
def imagenet_root(tmp_path: Path) -> Path:
    for i, wnid in enumerate(CLASSES):
        color = (40 * i, 100, 200)
        _write(tmp_path / "train" / wnid / "a.JPEG", color, (40, 30))
        _write(tmp_path / "train" / wnid / "b.png", color, (20, 50))
        _write(tmp_path / "val" / wnid / "c.png", color, (33, 33))
    (tmp_path / "train" / "n01" / "notes.txt").write_text("not an image")
    return tmp_path


def test_train_split_is_lazy_and_sorted(imagenet_root: Path) -> None:
    ds = load_dataset("imagenet", "train", data_dir=str(imagenet_root), image_size=16)
    assert isinstance(ds, ImageFolderDataset)
    assert ds.classes == sorted(CLASSES) and ds.info.num_classes == 3 and len(ds) == 6
    assert ds.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert not hasattr(ds, "images")
    image, label = ds[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32 and label.item() == 0


def test_pixels_are_normalised_with_imagenet_stats(imagenet_root: Path) -> None:
    ds = load_dataset("imagenet", "test", data_dir=str(imagenet_root), image_size=8)
    assert len(ds) == 3 and ds.info.mean == IMAGENET_MEAN
    image, label = ds[int(np.flatnonzero(ds.labels.numpy() == 0)[0])]  # class "n01" = color index 1
    expected = (torch.tensor([40, 100, 200]) / 255.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    # PNG is lossless and the image is one flat color, so resize + crop keep it exactly.
    assert torch.allclose(image.mean(dim=(1, 2)), expected, atol=1e-5)


def test_default_size_is_224_center_crop(imagenet_root: Path) -> None:
    ds = load_dataset("imagenet", "test", data_dir=str(imagenet_root))
    assert ds.info.image_size == 224 and ds[0][0].shape == (3, 224, 224)


def test_loads_through_a_dataloader(imagenet_root: Path) -> None:
    ds = load_dataset("imagenet", "train", data_dir=str(imagenet_root), image_size=8)
    images, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert images.shape == (4, 3, 8, 8) and labels.tolist() == [0, 0, 1, 1]


def test_errors(tmp_path: Path, imagenet_root: Path) -> None:
    with pytest.raises(DataError, match="needs data_dir"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="not found: .*missing"):
        load_dataset("imagenet", data_dir=str(tmp_path / "missing"))
    (tmp_path / "empty" / "train" / "n01").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found .*train"):
        load_dataset("imagenet", data_dir=str(tmp_path / "empty"))
    with pytest.raises(DataError, match="split folder not found: .*val"):
        load_dataset("imagenet", "test", data_dir=str(tmp_path / "empty"))
    (imagenet_root / "val" / "n09").mkdir()
    with pytest.raises(DataError, match="n09 is not one of the 3 training classes"):
        load_dataset("imagenet", "test", data_dir=str(imagenet_root))


def test_unreadable_image_is_a_data_error(imagenet_root: Path) -> None:
    (imagenet_root / "val" / "n01" / "c.png").write_bytes(b"garbage")
    ds = load_dataset("imagenet", "test", data_dir=str(imagenet_root), image_size=8)
    with pytest.raises(DataError, match="cannot read image .*c.png"):
        ds[0]
