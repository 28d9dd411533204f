"""`coco`: COCO 2017 detection read from a local folder.

Layout: `annotations/instances_{train,val}2017.json` and `{train,val}2017/*.jpg`. Categories map to
contiguous labels in id order; `iscrowd` annotations are flagged `difficult` (the mAP ignores them,
training skips them); boxes go from xywh to xyxy. Images are resized to `image_size` (boxes scaled).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from binas.data.detection import (
    DETECTION_DATASETS,
    DetectionDataset,
    DetectionInfo,
    Target,
    make_target,
    resize_image_and_boxes,
)
from binas.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD
from binas.data.voc import normalized, read_rgb
from binas.errors import DataError

COCO_IMAGE_SIZE = 512
COCO_SPLITS = ("train", "val")


def read_coco_json(path: Path) -> dict[str, Any]:
    """The instances file, checked for the three lists it must hold; a one-line DataError otherwise."""
    if not path.is_file():
        raise DataError(f"COCO annotation file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse COCO annotation file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise DataError(f"{path}: not a COCO instances file (needs images, annotations and categories lists)")
    return data


class COCODetection(DetectionDataset):
    """One COCO split: every image of the instances file, with its (possibly empty) annotations."""

    def __init__(
        self, data_dir: str | Path | None, split: str, image_size: int = COCO_IMAGE_SIZE, max_images: int | None = None
    ) -> None:
        if data_dir is None:
            raise DataError("data set 'coco' needs --data-dir (a folder holding annotations/ and train2017/)")
        if split not in COCO_SPLITS:
            raise DataError(f"unknown split '{split}' for data set 'coco'; choose one of: {', '.join(COCO_SPLITS)}")
        self.root = Path(data_dir)
        path = self.root / "annotations" / f"instances_{split}2017.json"
        data = read_coco_json(path)
        try:
            categories = sorted(data["categories"], key=lambda c: c["id"])
            label_of = {c["id"]: i for i, c in enumerate(categories)}
            self.files = [(img["id"], str(img["file_name"])) for img in data["images"]][:max_images]
            per_image: dict[Any, list[dict[str, Any]]] = {i: [] for i, _ in self.files}
            for ann in data["annotations"]:
                if ann["image_id"] in per_image:
                    per_image[ann["image_id"]].append(ann)
            self.annotations = [
                (
                    torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]).reshape(-1, 4),
                    torch.tensor([label_of[a["category_id"]] for a in anns], dtype=torch.long),
                    torch.tensor([bool(a.get("iscrowd", 0)) for a in anns], dtype=torch.bool),
                )
                for anns in (per_image[i] for i, _ in self.files)
            ]
            names = tuple(str(c["name"]) for c in categories)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: malformed COCO entry ({type(exc).__name__}: {exc})") from None
        self.image_dir = self.root / f"{split}2017"
        self.image_size = image_size
        self.info = DetectionInfo("coco", names, image_size, 3, IMAGENET_MEAN, IMAGENET_STD, hflip=True)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, Target]:
        path = self.image_dir / self.files[index][1]
        if not path.is_file():
            raise DataError(f"COCO image not found: {path}")
        boxes, labels, crowd = self.annotations[index]
        image, boxes = resize_image_and_boxes(read_rgb(path), boxes.float(), self.image_size)
        return normalized(image), make_target(boxes, labels, crowd)


def load_coco(
    split: str = "train", *, data_dir: str | None = None, image_size: int | None = None, max_images: int | None = None
) -> COCODetection:
    """The registered loader; `split` is `train` or `val` (2017)."""
    return COCODetection(data_dir, split, COCO_IMAGE_SIZE if image_size is None else int(image_size), max_images)


DETECTION_DATASETS.register("coco", load_coco)
