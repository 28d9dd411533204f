"""`voc`: PASCAL VOC detection read from a local `VOCdevkit/VOC2007` (or `VOC2012`) folder.

Layout: `JPEGImages/<id>.jpg`, `Annotations/<id>.xml`, `ImageSets/Main/<split>.txt` (`train`, `val`,
`trainval`, `test`). The XML is parsed with the standard library; VOC's 1-based inclusive pixel boxes
become 0-based xyxy (`xmin - 1, ymin - 1, xmax, ymax`, as mmdetection); `difficult` objects are kept and
flagged (the mAP ignores them; training skips them). Images are resized to `image_size` (boxes scaled).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

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
from binas.errors import DataError

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
VOC_IMAGE_SIZE = 512
VOC_YEARS = ("VOC2007", "VOC2012")


def find_voc_root(data_dir: str | Path | None) -> Path:
    """The `VOC20xx` folder: `data_dir` itself, or `data_dir/VOCdevkit/VOC2007` (then 2012), or `data_dir/VOC2007`."""
    if data_dir is None:
        raise DataError("data set 'voc' needs --data-dir (a folder holding VOCdevkit/VOC2007)")
    base = Path(data_dir)
    candidates = [base] + [base / "VOCdevkit" / y for y in VOC_YEARS] + [base / y for y in VOC_YEARS]
    for root in candidates:
        if (root / "Annotations").is_dir() and (root / "ImageSets" / "Main").is_dir():
            return root
    raise DataError(f"no PASCAL VOC data under {base} (expected VOCdevkit/VOC2007/{{Annotations,ImageSets/Main}})")


def _number(node: ET.Element, tag: str, path: Path) -> float:
    text = node.findtext(tag)
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{path}: missing or non-numeric <{tag}>") from None


def parse_voc_xml(path: Path, class_names: tuple[str, ...] = VOC_CLASSES) -> tuple[Tensor, Tensor, Tensor]:
    """(boxes N×4 xyxy 0-based, labels N, difficult N) of one annotation file; a one-line DataError if bad."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"cannot read VOC annotation {path}: {exc}") from None
    boxes, labels, difficult = [], [], []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in class_names:
            raise DataError(f"{path}: unknown VOC class '{name}'")
        bnd = obj.find("bndbox")
        if bnd is None:
            raise DataError(f"{path}: object '{name}' has no <bndbox>")
        x1, y1, x2, y2 = (_number(bnd, t, path) for t in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append([x1 - 1, y1 - 1, x2, y2])
        labels.append(class_names.index(name))
        difficult.append((obj.findtext("difficult") or "0").strip() == "1")
    return (
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        torch.tensor(labels, dtype=torch.long),
        torch.tensor(difficult, dtype=torch.bool),
    )


def read_rgb(path: Path) -> Tensor:
    """An image file as a 3×H×W float tensor in [0, 1] (Pillow); a one-line DataError if unreadable."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def normalized(image: Tensor) -> Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (image - mean) / std


class VOCDetection(DetectionDataset):
    """One `ImageSets/Main/<split>.txt` list; annotations parsed up front (errors show at load time)."""

    def __init__(
        self, data_dir: str | Path | None, split: str, image_size: int = VOC_IMAGE_SIZE, max_images: int | None = None
    ) -> None:
        self.root = find_voc_root(data_dir)
        listing = self.root / "ImageSets" / "Main" / f"{split}.txt"
        if not listing.is_file():
            raise DataError(f"VOC split file not found: {listing}")
        self.ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()][:max_images]
        self.annotations = [parse_voc_xml(self.root / "Annotations" / f"{i}.xml") for i in self.ids]
        self.image_size = image_size
        self.info = DetectionInfo("voc", VOC_CLASSES, image_size, 3, IMAGENET_MEAN, IMAGENET_STD, hflip=True)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Tensor, Target]:
        path = self.root / "JPEGImages" / f"{self.ids[index]}.jpg"
        if not path.is_file():
            raise DataError(f"VOC image not found: {path}")
        boxes, labels, difficult = self.annotations[index]
        image, boxes = resize_image_and_boxes(read_rgb(path), boxes, self.image_size)
        return normalized(image), make_target(boxes, labels, difficult)


def load_voc(
    split: str = "trainval",
    *,
    data_dir: str | None = None,
    image_size: int | None = None,
    max_images: int | None = None,
) -> VOCDetection:
    """The registered loader; `split` is a VOC list name (`train`, `val`, `trainval`, `test`)."""
    return VOCDetection(data_dir, split, VOC_IMAGE_SIZE if image_size is None else int(image_size), max_images)


DETECTION_DATASETS.register("voc", load_voc)
