"""Fixtures for binas.data tests: tiny on-disk data sets written in the real formats."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

IMAGES_PER_BATCH = 4
CIFAR_ROW = 3 * 32 * 32


def write_cifar_batch(path: Path, num_images: int, seed: int) -> None:
    """One batch in the official format: a pickled dict with bytes keys, uint8 N×3072 rows, int labels."""
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"fake batch",
        b"labels": [int(v) for v in rng.integers(0, 10, num_images)],
        b"data": rng.integers(0, 256, (num_images, CIFAR_ROW), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(num_images)],
    }
    with path.open("wb") as f:
        pickle.dump(batch, f, protocol=2)


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    """`tmp/cifar-10-batches-py` with 5 train batches and 1 test batch of 4 images each; returns tmp."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", IMAGES_PER_BATCH, seed=i)
    write_cifar_batch(folder / "test_batch", IMAGES_PER_BATCH, seed=0)
    meta = {
        b"label_names": [f"class{i}".encode() for i in range(10)],
        b"num_cases_per_batch": IMAGES_PER_BATCH,
    }
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump(meta, f, protocol=2)
    return tmp_path


@pytest.fixture
def images_per_batch() -> int:
    """How many images each batch file of `cifar_root` holds."""
    return IMAGES_PER_BATCH
