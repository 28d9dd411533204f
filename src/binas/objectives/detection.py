"""Detection losses: CenterNet's penalty-reduced focal loss on heat maps and the GIoU loss on boxes.

- `heatmap_focal_loss`: Zhou et al. (2019), Objects as Points, Eq. 1 (alpha 2, beta 4): a logistic focal
  loss whose negatives near an object centre are down-weighted by (1 - Y)^beta, normalised by the number
  of centres.
- `giou_loss`: Rezatofighi et al. (2019), 1 - GIoU, for xyxy boxes, weighted per box.
- `head_distill_loss`: distillation of a detector's outputs from its real twin ([Inf]: DCP-NAS gives none).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

FOCAL_ALPHA = 2.0
FOCAL_BETA = 4.0


def heatmap_focal_loss(
    logits: Tensor, target: Tensor, *, alpha: float = FOCAL_ALPHA, beta: float = FOCAL_BETA
) -> Tensor:
    """Objects-as-Points Eq. 1 on logits (B×K×H×W) against a Gaussian target heat map in [0, 1].

    Positives are the cells where the target is exactly 1 (object centres); the sum is divided by their
    count (at least 1). Computed from log-sigmoids, so it stays finite for any logit.
    """
    pos = target.eq(1).to(logits.dtype)
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = log_p.exp()
    pos_loss = -(((1 - p) ** alpha) * log_p * pos).sum()
    neg_loss = -(((1 - target) ** beta) * (p**alpha) * log_not_p * (1 - pos)).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1.0)


def box_area(boxes: Tensor) -> Tensor:
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def paired_giou(a: Tensor, b: Tensor, eps: float = 1e-7) -> tuple[Tensor, Tensor]:
    """(IoU, GIoU) of boxes a[i] and b[i] (N×4 xyxy each)."""
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    union = box_area(a) + box_area(b) - inter
    iou = inter / (union + eps)
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).clamp(min=0).prod(dim=1)
    return iou, iou - (hull - union) / (hull + eps)


def giou_loss(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Weighted mean of 1 - GIoU over N box pairs (0 when there are none)."""
    if pred.shape[0] == 0:
        return pred.sum() * 0.0
    _, giou = paired_giou(pred, target)
    loss = 1.0 - giou
    if weight is None:
        return loss.mean()
    return (loss * weight).sum() / weight.sum().clamp(min=1e-6)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU matrix (N×M) of xyxy boxes."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    return inter / (box_area(a)[:, None] + box_area(b)[None, :] - inter).clamp(min=1e-7)


def head_distill_loss(student: dict[str, Tensor], teacher: dict[str, Tensor]) -> Tensor:
    """MSE of the centre probabilities (summed over classes, mean over cells) + MSE of the neck features.

    `student` / `teacher` are `Detector` outputs (`heat` logits, `neck` features) on the same batch.
    """
    heat = F.mse_loss(student["heat"].sigmoid(), teacher["heat"].sigmoid(), reduction="none").sum(1).mean()
    return heat + F.mse_loss(student["neck"], teacher["neck"])
