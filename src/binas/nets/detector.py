"""`Detector`: an anchor-free (CenterNet-style) detector on any `binas.backbone`, 1-bit or real.

backbone (`forward(x) -> {"0", "1", "2"}` at `.strides`, `.out_channels`; its own binarization policy)
-> FPN-lite neck (real: 1x1 laterals, top-down nearest-upsample + add, one 3x3 smoothing conv on the
finest level, optionally `upsample` more x2 steps) -> two small real heads on that one map: a per-class
centre heat map and the ltrb distances (in pixels, `exp` of the output times the stride) from each cell
centre to the box sides. Targets, decoding and the loss are in `binas.nets.centernet`.

Why CenterNet-style rather than FCOS: on the small images it must train on in minutes on 2 cores
(64x64 canvases, 8x8 cells at stride 8), one output map with one positive per object is cheaper than
three FCOS levels, its decoding needs no NMS (a 3x3 max-pool keeps the peaks), and it has no scale ranges
or centre-sampling radius to tune per data set; the ltrb regression lets the box loss be GIoU (TTFNet).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Initial centre probability of every cell (Focal loss / CenterNet prior, bias -2.19 for 0.1).
HEAT_PRIOR = 0.1
#: ltrb = exp(min(out, MAX_LOG_DISTANCE)) * stride: no overflow from a wild early step.
MAX_LOG_DISTANCE = 8.0


class BackboneLike(Protocol):
    """What the detector relies on (`binas.nets.backbone`): three feature maps, their channels and strides."""

    out_channels: list[int]
    strides: list[int]

    def __call__(self, x: Tensor) -> OrderedDict[str, Tensor]: ...


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FPNLite(nn.Module):
    """1x1 laterals, top-down add, 3x3 smoothing of the finest level; `upsample` extra x2 steps after it."""

    def __init__(self, in_channels: list[int], channels: int, upsample: int = 0) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = conv_bn_relu(channels, channels)
        self.refine = nn.ModuleList(conv_bn_relu(channels, channels) for _ in range(upsample))

    def forward(self, features: list[Tensor]) -> Tensor:
        top = self.laterals[-1](features[-1])
        for lateral, feature in zip(self.laterals[-2::-1], features[-2::-1]):
            top = lateral(feature) + F.interpolate(top, size=feature.shape[-2:], mode="nearest")
        out = self.smooth(top)
        for conv in self.refine:
            out = conv(F.interpolate(out, scale_factor=2.0, mode="nearest"))
        return out


class CenterHead(nn.Module):
    """Per-class centre logits (K channels) and log ltrb distances in strides (4 channels)."""

    def __init__(self, channels: int, head_channels: int, num_classes: int) -> None:
        super().__init__()
        self.heat = nn.Sequential(
            nn.Conv2d(channels, head_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_channels, num_classes, 1),
        )
        self.box = nn.Sequential(
            nn.Conv2d(channels, head_channels, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(head_channels, 4, 1)
        )
        heat_out, box_out = self.heat[-1], self.box[-1]
        assert isinstance(heat_out, nn.Conv2d) and isinstance(box_out, nn.Conv2d)
        assert heat_out.bias is not None and box_out.bias is not None
        nn.init.constant_(heat_out.bias, -math.log((1 - HEAT_PRIOR) / HEAT_PRIOR))
        nn.init.normal_(box_out.weight, std=0.01)
        nn.init.zeros_(box_out.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.heat(x), self.box(x)


class Detector(nn.Module):
    """backbone -> FPN-lite -> centre head. `forward(x)` returns a dict of `heat` (B×K×H×W logits),
    `ltrb` (B×4×H×W pixel distances) and `neck` (the head's input, for feature distillation).

    Attributes:
        stride: the output map's stride in input pixels.
        num_classes: K.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        neck_channels: int = 64,
        head_channels: int = 64,
        upsample: int = 0,
    ) -> None:
        super().__init__()
        strides, out_channels = list(backbone.strides), list(backbone.out_channels)  # type: ignore[arg-type]
        if len(strides) != len(out_channels) or not strides:
            raise ValueError(f"backbone strides {strides} and out_channels {out_channels} do not pair up")
        if strides[0] % (2**upsample):
            raise ValueError(f"cannot upsample stride {strides[0]} {upsample} times")
        self.backbone = backbone
        self.neck = FPNLite(out_channels, neck_channels, upsample)
        self.head = CenterHead(neck_channels, head_channels, num_classes)
        self.stride = strides[0] // 2**upsample
        self.num_classes = num_classes

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        features = list(self.backbone(x).values())
        neck = self.neck(features)
        heat, box = self.head(neck)
        ltrb = torch.exp(box.clamp(max=MAX_LOG_DISTANCE)) * self.stride
        return {"heat": heat, "ltrb": ltrb, "neck": neck}


def backbone_profile_input(image_size: int, in_channels: int = 3) -> tuple[int, int, int, int]:
    """The dummy input size `binas.metrics.complexity.profile_model` runs the backbone on."""
    return (1, in_channels, image_size, image_size)
