"""Network stems, shared by the search supernet and the networks built from genotypes (always real)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn
from torch.nn.functional import relu

from binas.space.ops import OP_FAMILIES

StemKind = Literal["cifar", "imagenet"]


class ImageNetStem(nn.Module):
    """DARTS/DCP-NAS ImageNet stem: two stride-2 convs (stem0) then one more (stem1): stride 8 in all.

    stem0 = Conv3x3 s2 (3 -> C/2), BN, ReLU, Conv3x3 s2 (C/2 -> C), BN; stem1 = ReLU, Conv3x3 s2, BN.
    Its two outputs feed the first cell as (s0, s1) (spec §2.4).

    `rectify_s0`: the first cell gets (ReLU(stem0(x)), stem1(stem0(x))). That is what the DCP-NAS
    release's first cell receives: its stem1 begins with `ReLU(inplace=True)`, which rectifies the s0
    tensor it is applied to before the cells read it (YanjingLi0202/DCP-NAS, models/darts_cnn_m.py,
    `NetworkImageNet.forward`). Here the ReLU is explicit and stem1's own ReLU is not in place.
    """

    def __init__(self, in_channels: int, C: int, *, rectify_s0: bool = False) -> None:
        super().__init__()
        self.rectify_s0 = rectify_s0
        self.stem0 = nn.Sequential(
            nn.Conv2d(in_channels, C // 2, 3, 2, 1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, 2, 1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(C, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        return (relu(s0) if self.rectify_s0 else s0), s1

    def extra_repr(self) -> str:
        return f"rectify_s0={self.rectify_s0}"


class CifarStem(nn.Module):
    """DARTS CIFAR stem: Conv3x3 (3 -> C_stem) + BN at full resolution; both cell inputs are its output."""

    def __init__(self, in_channels: int, C_stem: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s = self.body(x)
        return s, s


def build_stem(
    kind: str, in_channels: int, C: int, stem_multiplier: int, *, family: str = "darts"
) -> tuple[nn.Module, int, int, bool]:
    """Return (stem, C_prev_prev, C_prev, reduction_prev) for the first cell.

    `family` is the op family of the cells: the ImageNet stem of the `dcp` family hands the first cell
    a rectified s0, as the DCP-NAS release does (`ImageNetStem`).
    """
    if kind == "cifar":
        c = stem_multiplier * C
        return CifarStem(in_channels, c), c, c, False
    if kind == "imagenet":
        rectify = OP_FAMILIES.get(family).rectified_imagenet_s0
        return ImageNetStem(in_channels, C, rectify_s0=rectify), C, C, True
    from binas.errors import ConfigError

    raise ConfigError(f"unknown stem '{kind}'; choose one of: cifar, imagenet")


def reduction_layers(layers: int) -> tuple[int, int]:
    """Cells where resolution halves and channels double: 1/3 and 2/3 of the depth (DARTS)."""
    return layers // 3, 2 * layers // 3
