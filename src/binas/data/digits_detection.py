"""`digits-detection`: the bundled detection stand-in, scikit-learn's real digits placed on blank canvases.

Each image is a `DIGITS_CANVAS` square canvas with 1-4 handwritten digits (the 8x8 scikit-learn images
upscaled to a random 12-20 px square) at random, non-overlapping positions; a box is the pasted square,
the class is the digit (10 classes). Train and test draw their digits from the disjoint source images of
the classification split (`binas.data.datasets`), so no test digit was seen in training. Everything is a
pure function of (split, canvas size, seed): the same images and boxes on every machine, no download.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from binas.data.datasets import _digits_arrays, _digits_split_indices
from binas.data.detection import DETECTION_DATASETS, DetectionDataset, DetectionInfo, Target, make_target
from binas.errors import DataError

NAME = "digits-detection"
DIGITS_CANVAS = 64
SPLIT_SIZES = {"train": 2000, "test": 500}
SPLIT_SEEDS = {"train": 170, "test": 171}
DIGIT_SIZES = (12, 20)  # inclusive range of the pasted square's side at a 64 px canvas (scaled with the canvas)
DIGITS_PER_IMAGE = (1, 4)
GAP = 2  # px kept free between two digits' boxes
PLACEMENT_TRIES = 50
#: Canvas pixels are in [0, 1]; these constants (about the train split's) map them to zero mean, unit std.
MEAN, STD = 0.05, 0.17
CLASS_NAMES = tuple(str(d) for d in range(10))


@cache  # one entry per digit size (9 at 64 px)
def _resized_digits(size: int) -> np.ndarray:
    """Every source digit upscaled to size×size (bilinear), N×size×size float32 in [0, 1]."""
    images, _ = _digits_arrays()
    grey = torch.from_numpy(images).unsqueeze(1)
    return F.interpolate(grey, size=(size, size), mode="bilinear", align_corners=False).squeeze(1).numpy()


def _overlaps(box: tuple[int, int, int, int], placed: list[tuple[int, int, int, int]]) -> bool:
    x1, y1, x2, y2 = box
    return any(x1 < b[2] + GAP and b[0] < x2 + GAP and y1 < b[3] + GAP and b[1] < y2 + GAP for b in placed)


@lru_cache(maxsize=4)
def make_canvases(split: str, canvas: int = DIGITS_CANVAS, num_images: int | None = None) -> tuple[Tensor, list]:
    """(N×1×canvas×canvas float images in [0, 1], per image a list of (x1, y1, x2, y2, digit))."""
    if split not in SPLIT_SIZES:
        raise DataError(f"unknown split '{split}' for data set '{NAME}'; choose one of: train, test")
    _, labels = _digits_arrays()
    sources = _digits_split_indices()[split]
    rng = np.random.default_rng(SPLIT_SEEDS[split])
    n = SPLIT_SIZES[split] if num_images is None else num_images
    lo, hi = (max(4, round(s * canvas / DIGITS_CANVAS)) for s in DIGIT_SIZES)
    images = np.zeros((n, canvas, canvas), dtype=np.float32)
    annotations: list[list[tuple[int, int, int, int, int]]] = []
    for i in range(n):
        placed: list[tuple[int, int, int, int]] = []
        objects = []
        for _ in range(int(rng.integers(DIGITS_PER_IMAGE[0], DIGITS_PER_IMAGE[1] + 1))):
            for _ in range(PLACEMENT_TRIES):
                size = int(rng.integers(lo, hi + 1))
                x, y = (int(v) for v in rng.integers(0, canvas - size + 1, size=2))
                box = (x, y, x + size, y + size)
                if not _overlaps(box, placed):
                    break
            else:
                continue  # no free spot: this image gets fewer digits
            src = int(sources[rng.integers(len(sources))])
            images[i, y : y + size, x : x + size] = _resized_digits(size)[src]
            placed.append(box)
            objects.append((*box, int(labels[src])))
        annotations.append(objects)
    return torch.from_numpy(images).unsqueeze(1), annotations


class DigitsDetection(DetectionDataset):
    """The canvases as a detection data set: 3-channel normalised images, exact boxes, digit labels."""

    def __init__(self, split: str, canvas: int = DIGITS_CANVAS, num_images: int | None = None) -> None:
        grey, self.annotations = make_canvases(split, canvas, num_images)
        self.images = (grey - MEAN) / STD
        self.info = DetectionInfo(NAME, CLASS_NAMES, canvas, 3, (MEAN,) * 3, (STD,) * 3, hflip=False)

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, index: int) -> tuple[Tensor, Target]:
        objects = self.annotations[index]
        boxes = torch.tensor([o[:4] for o in objects], dtype=torch.float32)
        labels = torch.tensor([o[4] for o in objects], dtype=torch.long)
        return self.images[index].expand(3, -1, -1), make_target(boxes, labels)


def load_digits_detection(
    split: str = "train", *, data_dir: str | None = None, image_size: int | None = None, max_images: int | None = None
) -> DigitsDetection:
    """The registered loader (`data_dir` is ignored: the digits ship inside scikit-learn). The first
    `max_images` images are those of the full split (one random stream, drawn in order)."""
    size = DIGITS_CANVAS if image_size is None else int(image_size)
    return DigitsDetection(split, size, None if max_images is None else min(max_images, SPLIT_SIZES.get(split, 0)))


DETECTION_DATASETS.register(NAME, load_digits_detection)
