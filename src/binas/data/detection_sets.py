"""`load_detection_dataset`: a registered detection data set by name (importing this registers all three).

Kept apart from `binas.data.detection` (the interface and the registry the loaders register in), so the
loaders import the interface and this module imports the loaders: no import cycle.
"""

from __future__ import annotations

import binas.data.coco  # noqa: F401 - registers `coco`
import binas.data.digits_detection  # noqa: F401 - registers `digits-detection`
import binas.data.voc  # noqa: F401 - registers `voc`
from binas.data.detection import DETECTION_DATASETS, DetectionDataset


def load_detection_dataset(
    name: str, split: str, *, data_dir: str | None = None, image_size: int | None = None, max_images: int | None = None
) -> DetectionDataset:
    """Split `split` of the registered detection data set `name` (an unknown name: a one-line error);
    `max_images`: only its first N images."""
    return DETECTION_DATASETS.get(name)(split, data_dir=data_dir, image_size=image_size, max_images=max_images)
