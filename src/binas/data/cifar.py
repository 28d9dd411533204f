"""CIFAR-10 from a local copy of the official "python version" (`cifar-10-batches-py`).

The batches are pickles. Unpickling runs code, so they are read with a restricted unpickler that only
rebuilds plain containers and numpy arrays: a tampered file fails with a `DataError` instead of executing.
"""

from __future__ import annotations

import codecs
import importlib
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from binas.data.base import PIXEL_MAX, DatasetInfo, InMemoryImageDataset, check_split, normalize_, resize
from binas.errors import DataError

logger = logging.getLogger(__name__)

CIFAR10_FOLDER = "cifar-10-batches-py"  # name of the folder inside the official archive
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch",)
CIFAR10_META_FILE = "batches.meta"
CIFAR10_NUM_CLASSES = 10
CIFAR10_IMAGE_SIZE = 32
CIFAR10_CHANNELS = 3
CIFAR10_ROW_BYTES = CIFAR10_CHANNELS * CIFAR10_IMAGE_SIZE * CIFAR10_IMAGE_SIZE  # 3072: R plane, G, B
# Per-channel mean/std of the CIFAR-10 training images in [0, 1], as used by DARTS (Liu et al., 2019,
# cnn/utils.py `_data_transforms_cifar10`).
CIFAR10_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR10_STD = (0.24703233, 0.24348505, 0.26158768)

_MULTIARRAY_FUNCTIONS = frozenset({"_reconstruct", "scalar"})
_MULTIARRAY_MODULES = frozenset({"numpy.core.multiarray", "numpy._core.multiarray"})
_NUMPY_TYPES = frozenset({"ndarray", "dtype"})


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy globals an ndarray needs, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "numpy" and name in _NUMPY_TYPES:
            return getattr(np, name)
        if module in _MULTIARRAY_MODULES and name in _MULTIARRAY_FUNCTIONS:
            return getattr(_multiarray(), name)
        if (module, name) == ("_codecs", "encode"):  # how Python 3 writes bytes at pickle protocol 2
            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _multiarray() -> Any:
    """numpy's multiarray module under its numpy 2 name, or its numpy 1 name (no deprecation warning)."""
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy < 2
        return importlib.import_module("numpy.core.multiarray")


def resolve_cifar10_dir(data_dir: str | Path | None) -> Path:
    """The `cifar-10-batches-py` folder: `data_dir` itself or its child of that name."""
    if data_dir is None:
        raise DataError(
            "cifar10 needs data_dir: the 'cifar-10-batches-py' folder or its parent "
            "(binas.data.download_cifar10(root) fetches it)"
        )
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"cifar10 data folder not found: {root}")
    nested = root / CIFAR10_FOLDER
    return nested if nested.is_dir() else root


def _field(batch: dict, key: str) -> Any:
    """A batch entry, whether the pickle stored its keys as bytes (official files) or str."""
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise KeyError(key)


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as (uint8 N×3072 rows, int64 labels N); any problem is a one-line `DataError`."""
    if not path.is_file():
        raise DataError(f"cifar10 batch file missing: {path}")
    try:
        with path.open("rb") as f:
            batch = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except Exception as err:  # arbitrary bytes can make unpickling raise almost anything; all mean "corrupt"
        raise DataError(f"corrupt cifar10 batch file {path}: {err}") from None
    try:
        if not isinstance(batch, dict):
            raise TypeError(f"expected a dict, got {type(batch).__name__}")
        data = np.asarray(_field(batch, "data"))
        labels = np.asarray(_field(batch, "labels"), dtype=np.int64)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"malformed cifar10 batch file {path}: missing or bad field {err}") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR10_ROW_BYTES:
        raise DataError(
            f"malformed cifar10 batch file {path}: data is {data.dtype} {data.shape}, "
            f"expected uint8 N×{CIFAR10_ROW_BYTES}"
        )
    if labels.shape != (data.shape[0],) or labels.min(initial=0) < 0 or labels.max(initial=0) >= CIFAR10_NUM_CLASSES:
        raise DataError(f"malformed cifar10 batch file {path}: labels do not match the {data.shape[0]} images")
    return data, labels


def load_cifar10(
    split: str = "train", *, data_dir: str | None = None, image_size: int | None = None
) -> InMemoryImageDataset:
    """CIFAR-10 split `split` from local files, normalised with the standard CIFAR-10 mean/std.

    "train" reads `data_batch_1..5` (50 000 images), "test" reads `test_batch` (10 000). `image_size`
    optionally resizes (bilinear) from the native 32×32.
    """
    check_split("cifar10", split)
    folder = resolve_cifar10_dir(data_dir)
    files = CIFAR10_TRAIN_FILES if split == "train" else CIFAR10_TEST_FILES
    for name in files:  # report a missing file before spending time reading the others
        if not (folder / name).is_file():
            raise DataError(f"cifar10 batch file missing: {folder / name}")
    parts = [read_cifar10_batch(folder / name) for name in files]
    rows = np.concatenate([data for data, _ in parts])
    labels = torch.from_numpy(np.concatenate([lab for _, lab in parts]))
    images = torch.from_numpy(rows).view(-1, CIFAR10_CHANNELS, CIFAR10_IMAGE_SIZE, CIFAR10_IMAGE_SIZE)
    images = images.float().div_(PIXEL_MAX)
    size = CIFAR10_IMAGE_SIZE if image_size is None else int(image_size)
    images = normalize_(resize(images, size), CIFAR10_MEAN, CIFAR10_STD)
    logger.debug("read %d cifar10 %s images from %s", len(labels), split, folder)
    info = DatasetInfo("cifar10", CIFAR10_NUM_CLASSES, CIFAR10_CHANNELS, size, CIFAR10_MEAN, CIFAR10_STD)
    return InMemoryImageDataset(images, labels, info)
