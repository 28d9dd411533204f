"""CIFAR-10 from a tiny fake `cifar-10-batches-py` written in the official pickle format."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from binas.data import CIFAR10_MEAN, CIFAR10_STD, load_dataset
from binas.errors import DataError


def test_reads_train_and_test_from_parent_or_folder(cifar_root: Path, images_per_batch: int) -> None:
    train = load_dataset("cifar10", "train", data_dir=str(cifar_root))
    test = load_dataset("cifar10", "test", data_dir=str(cifar_root / "cifar-10-batches-py"))
    assert train.images.shape == (5 * images_per_batch, 3, 32, 32)
    assert test.images.shape == (images_per_batch, 3, 32, 32)
    assert train.info.num_classes == 10 and train.info.mean == CIFAR10_MEAN


def test_pixel_layout_and_normalisation(cifar_root: Path) -> None:
    with (cifar_root / "cifar-10-batches-py" / "test_batch").open("rb") as f:
        raw = pickle.load(f, encoding="bytes")
    test = load_dataset("cifar10", "test", data_dir=str(cifar_root))
    # row layout: 1024 red values (row-major 32×32), then green, then blue
    red_pixel_0_1 = raw[b"data"][2, 1] / 255.0
    blue_pixel_31_31 = raw[b"data"][2, 3071] / 255.0
    assert test.images[2, 0, 0, 1].item() == pytest.approx((red_pixel_0_1 - CIFAR10_MEAN[0]) / CIFAR10_STD[0], abs=1e-5)
    assert test.images[2, 2, 31, 31].item() == pytest.approx(
        (blue_pixel_31_31 - CIFAR10_MEAN[2]) / CIFAR10_STD[2], abs=1e-5
    )
    assert test.labels.tolist() == raw[b"labels"]


def test_resize(cifar_root: Path, images_per_batch: int) -> None:
    small = load_dataset("cifar10", "test", data_dir=str(cifar_root), image_size=16)
    assert small.images.shape == (images_per_batch, 3, 16, 16) and small.info.image_size == 16


def test_missing_data_dir_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs data_dir"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="not found: .*nowhere"):
        load_dataset("cifar10", data_dir=str(tmp_path / "nowhere"))


def test_missing_batch(cifar_root: Path, images_per_batch: int) -> None:
    (cifar_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="missing: .*data_batch_3"):
        load_dataset("cifar10", "train", data_dir=str(cifar_root))
    assert len(load_dataset("cifar10", "test", data_dir=str(cifar_root))) == images_per_batch


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x80\x04this is not a pickle", "corrupt"),
        (b"", "corrupt"),
        (pickle.dumps([1, 2, 3]), "malformed"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "malformed"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "malformed"),
        (pickle.dumps({b"labels": [0]}), "malformed"),
    ],
)
def test_corrupt_or_malformed_batch(cifar_root: Path, content: bytes, message: str) -> None:
    (cifar_root / "cifar-10-batches-py" / "test_batch").write_bytes(content)
    with pytest.raises(DataError, match=f"{message} cifar10 batch file .*test_batch"):
        load_dataset("cifar10", "test", data_dir=str(cifar_root))


class _Exploit:
    """Unpickling this calls `Path.touch(target)`: what a tampered batch file could do with plain pickle."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.target,))


def test_pickle_with_foreign_globals_is_refused(cifar_root: Path) -> None:
    marker = cifar_root / "pwned"
    payload = pickle.dumps({b"data": _Exploit(marker)})
    (cifar_root / "cifar-10-batches-py" / "test_batch").write_bytes(payload)
    with pytest.raises(DataError, match="corrupt .*refusing to load global"):
        load_dataset("cifar10", "test", data_dir=str(cifar_root))
    assert not marker.exists()
    pickle.loads(payload)  # the payload is live: plain pickle would have run it
    assert marker.exists()


def test_str_keys_are_accepted(cifar_root: Path) -> None:
    batch = {"data": np.full((3, 3072), 255, np.uint8), "labels": [1, 2, 3]}
    (cifar_root / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(batch))
    test = load_dataset("cifar10", "test", data_dir=str(cifar_root))
    assert test.labels.tolist() == [1, 2, 3]
    assert torch.allclose(test.images[:, 1], torch.full((3, 32, 32), (1 - CIFAR10_MEAN[1]) / CIFAR10_STD[1]))
