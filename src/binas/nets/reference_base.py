"""What the hand-designed 1-bit reference networks share: the network shell, stems, binary convs, RSign/RPReLU.

A reference network (Bi-Real Net-18, ReActNet-A; `binas.nets.reference`) is a real stem, stages of
blocks whose body convs are binary, global pooling and a real classifier. It has the interface the
training engine and `binas.backbone` use on a genotype `Network`: `forward_all` (logits, no auxiliary
logits, last feature map), `forward_features`, `drop_path_prob` (unused: the published recipes have no
drop-path), `in_channels`, `stage_channels`.

Binarization: every binary conv of a reference network takes the policy's `pointwise` role. The
published networks binarize weights and activations of every body conv, which is what both `released`
and `strict` give on that role (they differ only on DARTS cell roles, which these networks do not have);
`real` gives the real-valued network of the same structure, and step 1 of two-step training
(`BinarizationPolicy.activations_only`) binary activations on real weights. Stems, shortcuts'
downsampling convs and the classifier are always real (as published).

Each binary conv is an `nn.Sequential(QuantConv2d, BatchNorm2d)` so `binas.export.deploy` folds the
BatchNorm; ReActNet's RSign shift is a separate `LearnableBias` in front of it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from binas.errors import ConfigError, ShapeError
from binas.nets.network import NetworkOutput
from binas.quant.policy import BinarizationPolicy

#: The policy role of a reference network's binary convs (see the module docstring).
BINARY_ROLE = "pointwise"
#: Stems for small images, shared by the reference networks: one real 3x3 conv + BN at this stride
#: (`cifar`: full resolution, for 16-32 px classification; `small`: stride 2, for 32-64 px backbones).
#: `imagenet` is each network's published stem.
SMALL_STEM_STRIDES = {"cifar": 1, "small": 2}


def binary_conv(
    policy: BinarizationPolicy, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1
) -> nn.Sequential:
    """A body conv of the policy's binary role, then its BatchNorm, in one `nn.Sequential` (deploy folds it)."""
    conv = policy.spec(BINARY_ROLE).conv(in_channels, out_channels, kernel_size, stride, kernel_size // 2)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels))


def real_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """A real conv + BatchNorm (stems, downsampling shortcuts)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels))


def downsample_pool() -> nn.AvgPool2d:
    """The shortcut's 2x2 average pool of a stride-2 block. `ceil_mode` keeps it the size of the stride-2
    3x3 conv's output (ceil(H / 2)) on odd sizes and 1x1 maps; on even sizes it is the published pool."""
    return nn.AvgPool2d(2, 2, ceil_mode=True)


def small_stem(kind: str, in_channels: int, out_channels: int) -> tuple[nn.Module, int]:
    """(stem, stride) of a small-image stem (`SMALL_STEM_STRIDES`)."""
    stride = SMALL_STEM_STRIDES[kind]
    return real_conv(in_channels, out_channels, 3, stride), stride


def check_stem(kind: str) -> None:
    if kind != "imagenet" and kind not in SMALL_STEM_STRIDES:
        raise ConfigError(f"unknown stem '{kind}'; choose one of: imagenet, {', '.join(SMALL_STEM_STRIDES)}")


class LearnableBias(nn.Module):
    """x + b with a learned per-channel b (ReActNet's RSign threshold and RPReLU shifts, Liu et al. 2020)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias


class RPReLU(nn.Sequential):
    """ReActNet's RPReLU: PReLU(x - gamma) + zeta, per channel (ReActNet Eq. 3)."""

    def __init__(self, channels: int) -> None:
        super().__init__(LearnableBias(channels), nn.PReLU(channels), LearnableBias(channels))


class ReferenceNetwork(nn.Module):
    """stem -> stages of blocks -> global pool -> linear.

    Subclasses build `stem` (its stride in `stem_stride`), `stages` (an `nn.ModuleList` of
    `nn.Sequential`s of blocks, `stage_channels` their output channels) and `feature_stages` (the three
    stages `binas.backbone` returns, at total strides `feature_strides`).
    """

    #: the published base width (what `channels` defaults to) and the number of blocks (fixed)
    published_channels: int
    blocks: int
    stem: nn.Module
    stages: nn.ModuleList
    stage_channels: list[int]
    stage_strides: list[int]
    feature_stages: tuple[int, int, int]
    stem_stride: int

    def __init__(self, *, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.drop_path_prob = 0.0  # set by the trainer's ramp; reference networks have no drop-path

    def _finish(self) -> None:
        """Add the pooled classifier after the subclass has built its stem and stages."""
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(self.stage_channels[-1], self.num_classes)

    @property
    def feature_channels(self) -> list[int]:
        return [self.stage_channels[i] for i in self.feature_stages]

    @property
    def feature_strides(self) -> list[int]:
        return [self.stage_strides[i] for i in self.feature_stages]

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"expected input of shape (batch, {self.in_channels}, H, W), got {tuple(x.shape)}")

    def stage_outputs(self, x: Tensor) -> list[Tensor]:
        """The output of every stage."""
        self._check_input(x)
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The three backbone feature maps (`feature_stages`)."""
        outs = self.stage_outputs(x)
        return [outs[i] for i in self.feature_stages]

    def forward_all(self, x: Tensor) -> NetworkOutput:
        """Logits, no auxiliary logits, and the last stage's feature map (what the trainer's losses read)."""
        features = self.stage_outputs(x)[-1]
        return NetworkOutput(self.classifier(self.global_pooling(features).flatten(1)), None, features)

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.forward_all(x).logits, None

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_all(x).logits
