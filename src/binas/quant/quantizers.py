"""Quantizer objects (larq-style): tiny modules handed to a `QuantConv2d`.

Activation quantizers map a feature map to {-1, +1}. Weight quantizers map a full weight tensor to
its binarized, scaled form beta * sign(W) (the scale is part of the weight quantizer because the
released learned-scale conv ties the scale's gradient to the sign's).
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from binas.quant import functional as F
from binas.registry import Registry

#: Default clip of the straight-through estimator (DCP-NAS Eq. 4.35: 1_{|w| <= 1}).
STE_CLIP = 1.0


class ActQuantizer(nn.Module):
    """Base class of activation quantizers; `precision` is the number of bits.

    `get_config()` returns the constructor arguments (larq's `get_config`): what a policy, a config file
    and a model file record so the same quantizer can be built again.
    """

    precision = 1

    def get_config(self) -> dict[str, Any]:
        return {}


class SignSTE(ActQuantizer):
    """sign(x) forward; clipped straight-through backward 1_{|x| <= clip}."""

    def __init__(self, clip: float = STE_CLIP) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, x: Tensor) -> Tensor:
        return F.sign_ste(x, self.clip)

    def get_config(self) -> dict[str, Any]:
        return {"clip": self.clip}

    def extra_repr(self) -> str:
        return f"clip={self.clip}"


class ApproxSign(ActQuantizer):
    """sign(x) forward; Bi-Real Net ApproxSign backward (Liu et al., 2018)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.approx_sign(x)


class WeightQuantizer(nn.Module):
    """Base class of weight quantizers: `forward(w)` returns beta * sign(w) for the conv to use."""

    precision = 1

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments besides `out_channels` (see `ActQuantizer.get_config`)."""
        return {}

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

    def get_config(self) -> dict[str, Any]:
        return {"clip": self.clip}

    def extra_repr(self) -> str:
        return f"clip={self.clip}"

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


ACT_QUANTIZERS: Registry[Callable[..., ActQuantizer]] = Registry("activation quantizer")
ACT_QUANTIZERS.register("ste_sign", SignSTE)
ACT_QUANTIZERS.register("approx_sign", ApproxSign)

WEIGHT_QUANTIZERS: Registry[Callable[..., WeightQuantizer]] = Registry("weight quantizer")
WEIGHT_QUANTIZERS.register("mean_abs", MeanAbsSign)
WEIGHT_QUANTIZERS.register("learned_scale", LearnedScaleSign)


def _accepted(factory: Callable[..., Any], args: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `args` that `factory` takes: a policy's shared settings (e.g. the STE `clip`) reach
    the quantizers that have them and skip the others (ApproxSign, the learned scale)."""
    params = inspect.signature(factory).parameters
    return {k: v for k, v in args.items() if k in params}


def make_act_quantizer(spec: str | ActQuantizer | None, args: Mapping[str, Any] | None = None) -> ActQuantizer | None:
    """Turn a registry name (or an object, or None) into an activation quantizer, with the `args` it takes."""
    if spec is None or isinstance(spec, ActQuantizer):
        return spec
    factory = ACT_QUANTIZERS.get(spec)
    return factory(**_accepted(factory, args or {}))


def make_weight_quantizer(
    spec: str | WeightQuantizer | None, out_channels: int, args: Mapping[str, Any] | None = None
) -> WeightQuantizer | None:
    """Turn a registry name (or an object, or None) into a weight quantizer for `out_channels`, with the
    `args` it takes."""
    if spec is None or isinstance(spec, WeightQuantizer):
        return spec
    factory = WEIGHT_QUANTIZERS.get(spec)
    return factory(out_channels, **_accepted(factory, args or {}))
