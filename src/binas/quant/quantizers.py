"""Quantizer objects (larq-style): tiny modules handed to a `QuantConv2d`.

Activation quantizers map a feature map to {-1, +1}. Weight quantizers map a full weight tensor to
its binarized, scaled form beta * sign(W) (the scale is part of the weight quantizer because the
released learned-scale conv ties the scale's gradient to the sign's).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable

import torch
from torch import Tensor, nn

from binas.quant import functional as F
from binas.registry import Registry

#: Default clip of the straight-through estimator (DCP-NAS Eq. 4.35: 1_{|w| <= 1}).
STE_CLIP = 1.0


class ActQuantizer(nn.Module):
    """Base class of activation quantizers; `precision` is the number of bits."""

    precision = 1


class SignSTE(ActQuantizer):
    """sign(x) forward; clipped straight-through backward 1_{|x| <= clip}."""

    def __init__(self, clip: float = STE_CLIP) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, x: Tensor) -> Tensor:
        return F.sign_ste(x, self.clip)

    def extra_repr(self) -> str:
        return f"clip={self.clip}"


class ApproxSign(ActQuantizer):
    """sign(x) forward; Bi-Real Net ApproxSign backward (Liu et al., 2018)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.approx_sign(x)


class WeightQuantizer(nn.Module):
    """Base class of weight quantizers: `forward(w)` returns beta * sign(w) for the conv to use."""

    precision = 1

    @abstractmethod
    def scale(self, w: Tensor) -> Tensor:
        """Per-output-channel scale beta, shape (C_out, 1, 1, 1)."""


class MeanAbsSign(WeightQuantizer):
    """beta = mean |W| per output channel (detached), clipped STE for W (Bi-Real/ReActNet, spec §3.2a)."""

    def __init__(self, out_channels: int, clip: float = STE_CLIP) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, w: Tensor) -> Tensor:
        return F.scaled_sign_ste(w, self.clip)

    def scale(self, w: Tensor) -> Tensor:
        return F.mean_abs_scale(w)


#: Standard deviation of the learned scale's initialisation (`randn` in the release).
LEARNED_SCALE_INIT_STD = 1.0


class LearnedScaleSign(WeightQuantizer):
    """The released DCP-NAS `MConv` binarizer: 0.02 * sign(W) * |M|, M learned (spec §3.2b)."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.randn(out_channels, 1, 1, 1) * LEARNED_SCALE_INIT_STD)

    def forward(self, w: Tensor) -> Tensor:
        return F.learned_scale_sign(w, self.m)

    def scale(self, w: Tensor) -> Tensor:
        return F.LEARNED_SCALE_MULTIPLIER * self.m.detach().abs()


ACT_QUANTIZERS: Registry[Callable[[], ActQuantizer]] = Registry("activation quantizer")
ACT_QUANTIZERS.register("ste_sign", SignSTE)
ACT_QUANTIZERS.register("approx_sign", ApproxSign)

WEIGHT_QUANTIZERS: Registry[Callable[[int], WeightQuantizer]] = Registry("weight quantizer")
WEIGHT_QUANTIZERS.register("mean_abs", MeanAbsSign)
WEIGHT_QUANTIZERS.register("learned_scale", LearnedScaleSign)


def make_act_quantizer(spec: str | ActQuantizer | None) -> ActQuantizer | None:
    """Turn a registry name (or an object, or None) into an activation quantizer."""
    if spec is None or isinstance(spec, ActQuantizer):
        return spec
    return ACT_QUANTIZERS.get(spec)()


def make_weight_quantizer(spec: str | WeightQuantizer | None, out_channels: int) -> WeightQuantizer | None:
    """Turn a registry name (or an object, or None) into a weight quantizer for `out_channels`."""
    if spec is None or isinstance(spec, WeightQuantizer):
        return spec
    return WEIGHT_QUANTIZERS.get(spec)(out_channels)
