"""ReActNet-A (Liu et al., "ReActNet", ECCV 2020): a binarized MobileNetV1 layout with RSign and RPReLU.

Structure as published (the authors' release, liuzechun/ReActNet, `mobilenet/*/reactnet.py`): a real 3x3
stride-2 conv + BN (32 channels); 13 blocks with outputs 64, 128, 128, 256, 256, 512 x 6, 1024, 1024
(stride 2 where the channels double, except the first block); global average pooling and a real FC.
Each block is two binary convs, each with its own real shortcut:

    out1 = RPReLU(BN(conv3x3(sign(x + b1))) + AvgPool2x2?(x))      # full (not depth-wise) 3x3 conv
    out2 = RPReLU(BN(conv1x1(sign(out1 + b2))) + out1)

and where the channels double, two 1x1 convs read the same binarized input and their outputs (each plus
out1) are concatenated: the "duplication" of the down-sampling blocks. RSign is sign(x + b) with the
learned per-channel threshold b a `LearnableBias` in front of the conv; RPReLU is
PReLU(x - gamma) + zeta. Activations use ApproxSign (the release's piecewise-quadratic sign), weights a
per-channel mean |W| scale.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from binas.nets.reference_base import (
    LearnableBias,
    ReferenceNetwork,
    RPReLU,
    binary_conv,
    check_stem,
    downsample_pool,
    real_conv,
    small_stem,
)
from binas.quant.policy import BinarizationPolicy

#: Block outputs in units of the stem width (published stem: 32 -> 64, 128, 128, ..., 1024, 1024).
BLOCK_MULTIPLES = (2, 4, 4, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32)
#: Blocks of each resolution stage (the backbone returns the last three stages' outputs).
STAGE_BLOCKS = (3, 2, 6, 2)
#: The published stem width.
PUBLISHED_CHANNELS = 32


class ReActBlock(nn.Module):
    """One ReActNet-A block: a binary 3x3 conv and a binary 1x1 conv (two when the channels double)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, policy: BinarizationPolicy) -> None:
        super().__init__()
        if out_channels not in (in_channels, 2 * in_channels):
            raise ValueError(f"a ReActNet block keeps or doubles its channels, got {in_channels} -> {out_channels}")
        self.spatial = nn.Sequential(
            LearnableBias(in_channels), *binary_conv(policy, in_channels, in_channels, 3, stride)
        )
        self.pool: nn.Module = downsample_pool() if stride == 2 else nn.Identity()
        self.act1 = RPReLU(in_channels)
        self.shift2 = LearnableBias(in_channels)
        copies = out_channels // in_channels
        self.pointwise = nn.ModuleList(binary_conv(policy, in_channels, in_channels, 1) for _ in range(copies))
        self.act2 = RPReLU(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        out1 = self.act1(self.spatial(x) + self.pool(x))
        y = self.shift2(out1)
        return self.act2(torch.cat([pw(y) + out1 for pw in self.pointwise], dim=1))


class ReActNetA(ReferenceNetwork):
    """ReActNet-A; `channels` is the stem width (published: 32; the blocks scale with it).

    `stem`: `imagenet` (published: 3x3 s2 conv, stride 2; the same as `small`) or `cifar` (stride 1).
    `binas.backbone` returns the 256-, 512- and 1024-channel stages (strides 8/16/32 with `imagenet`).
    """

    published_channels = PUBLISHED_CHANNELS
    blocks = len(BLOCK_MULTIPLES)

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        channels: int = PUBLISHED_CHANNELS,
        stem: str = "imagenet",
        policy: BinarizationPolicy | None = None,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        check_stem(stem)
        policy = policy or BinarizationPolicy.real()
        if stem == "imagenet":
            self.stem, self.stem_stride = real_conv(in_channels, channels, 3, 2), 2
        else:
            self.stem, self.stem_stride = small_stem(stem, in_channels, channels)
        outs = [channels * m for m in BLOCK_MULTIPLES]
        ins = [channels, *outs[:-1]]
        strides = [2 if o == 2 * i and b > 0 else 1 for b, (i, o) in enumerate(zip(ins, outs))]
        blocks = [ReActBlock(i, o, s, policy) for i, o, s in zip(ins, outs, strides)]
        self.stages = nn.ModuleList()
        self.stage_channels, self.stage_strides = [], []
        start, total = 0, self.stem_stride
        for count in STAGE_BLOCKS:
            for s in strides[start : start + count]:
                total *= s
            self.stages.append(nn.Sequential(*blocks[start : start + count]))
            self.stage_channels.append(outs[start + count - 1])
            self.stage_strides.append(total)
            start += count
        self.feature_stages = (1, 2, 3)
        self._finish()
