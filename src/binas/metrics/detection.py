"""COCO-style detection mAP by pycocotools, from predictions and ground truth held in memory.

`coco_map(predictions, ground_truth, num_classes)` builds the COCO ground-truth and result objects in
memory (no JSON files) and runs `COCOeval` (bbox): mAP@[.5:.95] (`map`), mAP@.5 (`map50`), mAP@.75
(`map75`). Boxes are xyxy pixels; `difficult` ground truth (VOC) / `iscrowd` (COCO) is passed as COCO's
`iscrowd`, which `COCOeval` ignores when matching (a detection on it is neither a hit nor a miss).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

from torch import Tensor

from binas.errors import ConfigError

#: The keys of `coco_map`'s result and the `COCOeval.stats` entry each one is.
STAT_INDEX = {"map": 0, "map50": 1, "map75": 2}


def _xywh(box: Sequence[float]) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def coco_ground_truth(ground_truth: Sequence[dict[str, Tensor]], num_classes: int) -> dict[str, Any]:
    """The COCO `dataset` dict of per-image targets (`boxes`, `labels`, optional `difficult`)."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, target in enumerate(ground_truth):
        images.append({"id": image_id})
        flags = target.get("difficult")
        for j, (box, label) in enumerate(zip(target["boxes"].tolist(), target["labels"].tolist())):
            x, y, w, h = _xywh(box)
            crowd = int(bool(flags[j])) if flags is not None else 0
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": crowd,
                }
            )
    return {"images": images, "annotations": annotations, "categories": [{"id": k} for k in range(num_classes)]}


def coco_results(predictions: Sequence[dict[str, Tensor]]) -> list[dict[str, Any]]:
    """COCO result entries of per-image predictions (`boxes`, `scores`, `labels`)."""
    return [
        {"image_id": image_id, "category_id": int(label), "bbox": _xywh(box), "score": float(score)}
        for image_id, pred in enumerate(predictions)
        for box, score, label in zip(pred["boxes"].tolist(), pred["scores"].tolist(), pred["labels"].tolist())
    ]


def coco_map(
    predictions: Sequence[dict[str, Tensor]], ground_truth: Sequence[dict[str, Tensor]], num_classes: int
) -> dict[str, float]:
    """`{"map", "map50", "map75"}` of `predictions[i]` against `ground_truth[i]` (COCOeval, bbox, all areas).

    No predictions at all, or no ground truth, give 0.0 (COCOeval itself reports -1 for "undefined").
    """
    if len(predictions) != len(ground_truth):
        raise ConfigError(f"{len(predictions)} predictions for {len(ground_truth)} images")
    results = coco_results(predictions)
    gt = coco_ground_truth(ground_truth, num_classes)
    if not results or not gt["annotations"]:
        return dict.fromkeys(STAT_INDEX, 0.0)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {k: max(float(evaluator.stats[i]), 0.0) for k, i in STAT_INDEX.items()}
