"""The MBConv op of the mobile space, real (MobileNetV2) or 1-bit (with Bi-Real-style shortcuts).

Real: MobileNetV2's inverted residual body, [1x1 expand, BN, ReLU6], k x k depth-wise, BN, ReLU6, 1x1
project, BN (Sandler et al., 2018; `expand == 1` has no expand conv).

1-bit (the policy binarizes the activations of a block conv, as `released` and `strict` do): the same
three convs (weights binarized as the policy says), each followed by BN and wrapped by a parameter-free
real shortcut where the channel counts allow it (Bi-Real Net, Liu et al. 2018; ReActNet, Liu et al. 2020
use the same channel-duplicating / averaging shortcuts), and no ReLU6: the sign functions are the
non-linearities. Measured on digits (a fixed path, 5 epochs, SGD): without these shortcuts the
`released` MBConv network stayed at chance (10 %), with binary activations alone as well; with them it
reached 79-92 % training accuracy. The shortcuts are repeats, means and average pools: no parameters
and, under the profiler's counting rules, no FLOPs. Weight-only binarization keeps the real structure.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from binas.quant.policy import BinarizationPolicy, ConvSpec


class ChannelShortcut(nn.Module):
    """Parameter-free real path from c_in to c_out channels at a stride: 2x2 average pooling for stride
    2, channel repetition (c_out a multiple of c_in) or group means (c_in a multiple of c_out)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        if not self.possible(c_in, c_out):
            raise ValueError(f"no channel shortcut from {c_in} to {c_out} channels")
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    @staticmethod
    def possible(c_in: int, c_out: int) -> bool:
        return c_out % c_in == 0 or c_in % c_out == 0

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:  # same output size as a k x k conv with padding k // 2
            x = F.avg_pool2d(x, self.stride, ceil_mode=True)
        if self.c_out > self.c_in:
            return x.repeat(1, self.c_out // self.c_in, 1, 1)
        if self.c_out < self.c_in:
            b, _, h, w = x.shape
            return x.reshape(b, self.c_out, self.c_in // self.c_out, h, w).mean(dim=2)
        return x


class BinaryConvBN(nn.Module):
    """A (binarized) conv and its BN, plus a `ChannelShortcut` around them when the channels allow."""

    def __init__(self, spec: ConvSpec, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = spec.conv(c_in, c_out, kernel, stride, kernel // 2, groups=groups)
        self.bn = nn.BatchNorm2d(c_out)
        self.shortcut = ChannelShortcut(c_in, c_out, stride) if ChannelShortcut.possible(c_in, c_out) else None

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn(self.conv(x))
        return y if self.shortcut is None else y + self.shortcut(x)


class MBConv(nn.Module):
    """Inverted residual body (the block's own identity shortcut lives in the block), real or 1-bit."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, expand: int, stride: int, policy: BinarizationPolicy
    ) -> None:
        super().__init__()
        pw, dw = policy.spec("pointwise"), policy.spec("depthwise")
        mid = c_in * expand
        self.kernel, self.expand = kernel, expand
        self.binary = pw.binary_activations or dw.binary_activations
        layers: list[nn.Module] = []
        if self.binary:
            if expand != 1:
                layers.append(BinaryConvBN(pw, c_in, mid, 1))
            layers += [BinaryConvBN(dw, mid, mid, kernel, stride, groups=mid), BinaryConvBN(pw, mid, c_out, 1)]
        else:
            if expand != 1:
                layers += [pw.conv(c_in, mid, 1), nn.BatchNorm2d(mid), nn.ReLU6(inplace=False)]
            layers += [
                dw.conv(mid, mid, kernel, stride, kernel // 2, groups=mid),
                nn.BatchNorm2d(mid),
                nn.ReLU6(inplace=False),
                pw.conv(mid, c_out, 1),
                nn.BatchNorm2d(c_out),
            ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)
