"""Tiny detection data sets written in the real VOC and COCO layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

VOC_XML = """<annotation><filename>{id}.jpg</filename>
<size><width>{w}</width><height>{h}</height><depth>3</depth></size>
{objects}</annotation>"""
VOC_OBJECT = (
    "<object><name>{name}</name><difficult>{difficult}</difficult>"
    "<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
)


def write_image(path: Path, width: int, height: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    """`tmp/VOCdevkit/VOC2007` with 2 images (40x20 and 30x30); returns tmp."""
    root = tmp_path / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    objects = {
        "000001": [("dog", 0, 1, 1, 20, 10), ("person", 1, 21, 11, 40, 20)],
        "000002": [("car", 0, 5, 5, 15, 25)],
    }
    sizes = {"000001": (40, 20), "000002": (30, 30)}
    for i, (image_id, objs) in enumerate(objects.items()):
        w, h = sizes[image_id]
        write_image(root / "JPEGImages" / f"{image_id}.jpg", w, h, i)
        body = "".join(VOC_OBJECT.format(name=n, difficult=d, x1=a, y1=b, x2=c, y2=e) for n, d, a, b, c, e in objs)
        (root / "Annotations" / f"{image_id}.xml").write_text(VOC_XML.format(id=image_id, w=w, h=h, objects=body))
    (root / "ImageSets/Main/trainval.txt").write_text("000001\n000002\n")
    (root / "ImageSets/Main/test.txt").write_text("000002\n")
    return tmp_path


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    """`tmp/annotations/instances_val2017.json` + `tmp/val2017/*.png`: 2 images, 2 categories (ids 3, 7)."""
    (tmp_path / "annotations").mkdir()
    (tmp_path / "val2017").mkdir()
    write_image(tmp_path / "val2017" / "a.png", 20, 10, 0)
    write_image(tmp_path / "val2017" / "b.png", 16, 16, 1)
    data = {
        "images": [{"id": 11, "file_name": "a.png", "width": 20, "height": 10}, {"id": 12, "file_name": "b.png"}],
        "annotations": [
            {"id": 1, "image_id": 11, "category_id": 7, "bbox": [2, 1, 8, 4], "iscrowd": 0, "area": 32},
            {"id": 2, "image_id": 11, "category_id": 3, "bbox": [10, 5, 10, 5], "iscrowd": 1, "area": 50},
        ],
        "categories": [{"id": 7, "name": "seven"}, {"id": 3, "name": "three"}],
    }
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    return tmp_path
