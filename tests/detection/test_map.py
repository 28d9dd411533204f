"""COCO-style mAP (pycocotools) on cases whose value is known by hand."""

from __future__ import annotations

import pytest
import torch

from binas.metrics.detection import coco_map

GT = [{"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "labels": torch.tensor([1])}]
THRESHOLDS = [0.5 + 0.05 * i for i in range(10)]


def shifted(dx: float, score: float = 0.9, label: int = 1) -> list[dict[str, torch.Tensor]]:
    return [
        {
            "boxes": torch.tensor([[dx, 0.0, 10.0 + dx, 10.0]]),
            "scores": torch.tensor([score]),
            "labels": torch.tensor([label]),
        }
    ]


def test_a_perfect_prediction_scores_one():
    assert coco_map(shifted(0.0), GT, 3) == pytest.approx({"map": 1.0, "map50": 1.0, "map75": 1.0})


@pytest.mark.parametrize("dx", [1.0, 2.0, 3.0])
def test_a_shifted_box_scores_the_fraction_of_thresholds_its_iou_passes(dx):
    iou = (10 - dx) / (10 + dx)  # a 10x10 box shifted by dx along x
    expected = sum(iou >= t for t in THRESHOLDS) / len(THRESHOLDS)  # one object: AP is 1 or 0 per threshold
    result = coco_map(shifted(dx), GT, 3)
    assert result["map"] == pytest.approx(expected)
    assert result["map50"] == pytest.approx(1.0) and result["map75"] == pytest.approx(float(iou >= 0.75))
    assert {1.0: 0.7, 2.0: 0.4, 3.0: 0.1}[dx] == pytest.approx(expected)


def test_wrong_class_missing_predictions_and_a_ranked_false_positive():
    assert coco_map(shifted(0.0, label=2), GT, 3)["map"] == 0.0
    assert (
        coco_map([{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)}], GT, 3)["map"]
        == 0.0
    )
    # a false positive ranked above the hit: precision 1/2 at recall 1 -> AP 0.5 (101-point interpolation)
    two = [
        {
            "boxes": torch.tensor([[50.0, 50, 60, 60], [0, 0, 10, 10]]),
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([1, 1]),
        }
    ]
    assert coco_map(two, GT, 3)["map50"] == pytest.approx(0.5)


def test_difficult_ground_truth_is_ignored():
    gt = [
        {
            "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
            "labels": torch.tensor([1, 1]),
            "difficult": torch.tensor([False, True]),
        }
    ]
    pred = [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([1])}]
    assert coco_map(pred, gt, 3)["map"] == pytest.approx(1.0)  # the missed difficult box costs nothing
