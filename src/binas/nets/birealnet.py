"""Bi-Real Net-18 (Liu et al., "Bi-Real Net", ECCV 2018): ResNet-18 with one real shortcut per binary conv.

Structure as published (the authors' PyTorch release, liuzechun/Bi-Real-net,
`pytorch_implementation/BiReal18_34/birealnet.py`): a real 7x7 stride-2 conv + BN + 3x3 stride-2 max
pool (no ReLU); four stages of 4 blocks (the 8 ResNet-18 basic blocks, each split into its two convs),
each block `sign -> binary 3x3 conv -> BN -> + shortcut`; the first block of stages 2-4 halves the
resolution and doubles the channels, its shortcut is a real AvgPool 2x2 + 1x1 conv + BN; then global
average pooling and a real FC. Activations are binarized with ApproxSign and weights with a per-channel
mean |W| scale (the policy's `approx_sign` / `mean_abs`, binas's defaults).
"""

from __future__ import annotations

from torch import Tensor, nn

from binas.nets.reference_base import ReferenceNetwork, binary_conv, check_stem, downsample_pool, real_conv, small_stem
from binas.quant.policy import BinarizationPolicy

#: Bi-Real Net-18's blocks per stage (one binary conv each: 2 per ResNet-18 basic block).
BLOCKS_PER_STAGE = (4, 4, 4, 4)
#: The published width: channels of the stem and the first stage (then 128, 256, 512).
PUBLISHED_CHANNELS = 64


class BiRealBlock(nn.Module):
    """out = BN(binary_conv(sign(x))) + shortcut(x); shortcut = identity or AvgPool 2x2 + real 1x1 conv + BN."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, policy: BinarizationPolicy) -> None:
        super().__init__()
        self.body = binary_conv(policy, in_channels, out_channels, 3, stride)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            pool = downsample_pool() if stride != 1 else nn.Identity()
            self.shortcut = nn.Sequential(pool, *real_conv(in_channels, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.shortcut(x)


class BiRealNet18(ReferenceNetwork):
    """Bi-Real Net-18; `channels` is the stem / first-stage width (published: 64).

    `stem`: `imagenet` (published: 7x7 s2 conv + max pool, stride 4), `small` (3x3 s2 conv, stride 2) or
    `cifar` (3x3 conv, stride 1). `binas.backbone` returns stages 2-4 (strides 8/16/32 with `imagenet`).
    """

    published_channels = PUBLISHED_CHANNELS
    blocks = sum(BLOCKS_PER_STAGE)

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
            conv = nn.Conv2d(in_channels, channels, 7, 2, 3, bias=False)
            self.stem = nn.Sequential(conv, nn.BatchNorm2d(channels), nn.MaxPool2d(3, 2, 1))
            self.stem_stride = 4
        else:
            self.stem, self.stem_stride = small_stem(stem, in_channels, channels)
        self.stages = nn.ModuleList()
        self.stage_channels, self.stage_strides = [], []
        c_in, total = channels, self.stem_stride
        for i, blocks in enumerate(BLOCKS_PER_STAGE):
            c_out = channels * 2**i
            first_stride = 1 if i == 0 else 2
            total *= first_stride
            self.stages.append(
                nn.Sequential(
                    *(
                        BiRealBlock(c_in if b == 0 else c_out, c_out, first_stride if b == 0 else 1, policy)
                        for b in range(blocks)
                    )
                )
            )
            self.stage_channels.append(c_out)
            self.stage_strides.append(total)
            c_in = c_out
        self.feature_stages = (1, 2, 3)
        self._finish()
