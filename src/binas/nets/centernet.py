"""CenterNet-style targets, loss and decoding for `binas.nets.detector.Detector`.

Targets (Zhou et al., 2019; TTFNet's elliptical Gaussian, Liu et al., 2020): each object's centre cell
gets 1 in its class's heat map, neighbours a Gaussian with sigma = max(0.54 w / 6, MIN_SIGMA) cells
(likewise h); the cells where an object's Gaussian is at least `REG_THRESHOLD` (and the largest among
objects) regress that object's box, weighted by the Gaussian. Boxes are ltrb distances from the cell
centre ((j + 0.5) * stride); the box loss is GIoU. Decoding: sigmoid, 3x3 max-pool peaks (the only NMS
this head needs: one peak per object), top-k over classes and cells, boxes clipped to the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from binas.objectives.detection import giou_loss, heatmap_focal_loss

GAUSSIAN_ALPHA = 0.54  # TTFNet
MIN_SIGMA = 0.5  # cells: a small object's neighbours still get a soft target
REG_THRESHOLD = 0.1
Targets = list[dict[str, Tensor]]


def cell_centres(height: int, width: int, stride: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """(x, y) pixel centres of the output cells, each H×W."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * stride
    return xs.view(1, -1).expand(height, -1), ys.view(-1, 1).expand(-1, width)


def encode_targets(
    targets: Targets, num_classes: int, size: tuple[int, int], stride: int
) -> tuple[Tensor, Tensor, Tensor]:
    """(heat B×K×H×W, box B×H×W×4 xyxy, weight B×H×W) for a batch; `difficult` objects are left out.

    All objects of the batch at once: their Gaussians (N×H×W) go into the heat maps by a max-scatter, and
    each cell regresses the box of the object whose Gaussian is largest there (if >= REG_THRESHOLD).
    """
    height, width = size
    batch = len(targets)
    device = targets[0]["boxes"].device if targets else torch.device("cpu")
    heat = torch.zeros(batch, num_classes, height, width, device=device)
    box = torch.zeros(batch, height, width, 4, device=device)
    weight = torch.zeros(batch, height, width, device=device)
    kept = [_trainable(t) for t in targets]
    boxes = torch.cat([k[0] for k in kept]) if kept else torch.zeros(0, 4, device=device)
    if len(boxes) == 0:
        return heat, box, weight
    labels = torch.cat([k[1] for k in kept])
    image = torch.cat([torch.full((len(k[1]),), b, device=device, dtype=torch.long) for b, k in enumerate(kept)])
    wh = boxes[:, 2:] - boxes[:, :2]
    centre = ((boxes[:, :2] + boxes[:, 2:]) / 2 / stride).floor()
    cx = centre[:, 0].clamp(0, width - 1).view(-1, 1, 1)
    cy = centre[:, 1].clamp(0, height - 1).view(-1, 1, 1)
    sigma = (GAUSSIAN_ALPHA * wh / 6 / stride).clamp(min=MIN_SIGMA)
    sx, sy = sigma[:, 0].view(-1, 1, 1), sigma[:, 1].view(-1, 1, 1)
    gy = torch.arange(height, device=device, dtype=torch.float32).view(1, -1, 1)
    gx = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, -1)
    g = torch.exp(-((gx - cx) ** 2) / (2 * sx * sx) - ((gy - cy) ** 2) / (2 * sy * sy))  # N×H×W
    rows = (image * num_classes + labels).view(-1, 1).expand(-1, height * width)
    heat.view(batch * num_classes, -1).scatter_reduce_(0, rows, g.flatten(1), "amax")
    per_image = torch.zeros(batch, len(boxes), height, width, device=device)
    per_image[image, torch.arange(len(boxes), device=device)] = g
    best, owner = per_image.max(dim=1)
    region = best >= REG_THRESHOLD
    weight = torch.where(region, best, weight)
    box = torch.where(region[..., None], boxes[owner], box)
    return heat, box, weight


def _trainable(target: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """(boxes, labels) of the objects that get targets: not difficult, of positive width and height."""
    boxes = target["boxes"].float()
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if "difficult" in target:
        keep &= ~target["difficult"]
    return boxes[keep], target["labels"][keep]


def boxes_from_ltrb(ltrb: Tensor, stride: int) -> Tensor:
    """B×4×H×W distances -> B×H×W×4 xyxy boxes around each cell centre."""
    _, _, height, width = ltrb.shape
    xs, ys = cell_centres(height, width, stride, ltrb.device)
    l, t, r, b = ltrb.unbind(1)
    return torch.stack([xs - l, ys - t, xs + r, ys + b], dim=-1)


def ltrb_from_boxes(box: Tensor, stride: int) -> Tensor:
    """Inverse of `boxes_from_ltrb`: B×H×W×4 xyxy -> B×4×H×W distances."""
    _, height, width, _ = box.shape
    xs, ys = cell_centres(height, width, stride, box.device)
    return torch.stack([xs - box[..., 0], ys - box[..., 1], box[..., 2] - xs, box[..., 3] - ys], dim=1)


def detection_loss(
    outputs: dict[str, Tensor], targets: Targets, stride: int, *, giou_weight: float = 2.0
) -> tuple[Tensor, dict[str, float]]:
    """Focal heat-map loss + giou_weight x Gaussian-weighted GIoU loss; (loss, its parts for the log)."""
    heat_logits = outputs["heat"]
    size = (int(heat_logits.shape[-2]), int(heat_logits.shape[-1]))
    heat, box, weight = encode_targets(targets, heat_logits.shape[1], size, stride)
    focal = heatmap_focal_loss(heat_logits.float(), heat)
    mask = weight > 0
    pred = boxes_from_ltrb(outputs["ltrb"].float(), stride)
    giou = giou_loss(pred[mask], box[mask], weight[mask])
    loss = focal + giou_weight * giou
    return loss, {"train_heat": float(focal.detach()), "train_giou": float(giou.detach())}


def decode(
    outputs: dict[str, Tensor], stride: int, image_size: int, *, top_k: int = 100, score_threshold: float = 0.05
) -> list[dict[str, Tensor]]:
    """Per image a dict of `boxes` (N×4 xyxy pixels), `scores`, `labels`: the top-k 3x3 peaks above the threshold."""
    heat = outputs["heat"].float().sigmoid()
    batch, classes, height, width = heat.shape
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    scores, index = peaks.flatten(1).topk(min(top_k, classes * height * width), dim=1)
    labels, cell = index // (height * width), index % (height * width)
    boxes = boxes_from_ltrb(outputs["ltrb"].float(), stride).flatten(1, 2)  # B×HW×4
    boxes = boxes.gather(1, cell[..., None].expand(-1, -1, 4)).clamp(0, image_size)
    out = []
    for b in range(batch):
        keep = scores[b] >= score_threshold
        out.append({"boxes": boxes[b][keep], "scores": scores[b][keep], "labels": labels[b][keep]})
    return out
