"""`to_inference`: a copy of a trained network with plain convs, folded binary weights and sign ops."""

from __future__ import annotations

import copy
from typing import cast

import torch
from torch import Tensor, nn

from binas.quant.functional import hard_sign
from binas.quant.layers import QuantConv2d

#: A 2-D conv's size argument. `nn.Conv2d` stores each as `tuple[int, ...]` (the type of every `_ConvNd`),
#: but for a 2-D conv the tuple holds two ints, which is what its constructor takes.
_Pair = tuple[int, int]


class BinarySign(nn.Module):
    """sign(x) with sign(0) = +1, as in training (`binas.quant.functional.hard_sign`).

    ONNX's `Sign` maps 0 to 0, which would make a "1-bit" input ternary (exact zeros are common after a
    ReLU), so in an ONNX export this is `GreaterOrEqual` + `Where`: the same values the trained network
    uses. Eager PyTorch runs the faster `hard_sign`.
    """

    def forward(self, x: Tensor) -> Tensor:
        if torch.onnx.is_in_onnx_export():
            return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
        return hard_sign(x)


def _plain(conv: QuantConv2d, weight: Tensor | None) -> nn.Module:
    """A `nn.Conv2d` computing what `conv` computes in eval mode, preceded by `BinarySign` if needed."""
    plain = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        cast(_Pair, conv.kernel_size),
        cast(_Pair, conv.stride),
        cast("str | _Pair", conv.padding),
        cast(_Pair, conv.dilation),
        conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        folded = conv.quantized_weight() if weight is None else weight
        # clone() keeps the memory format, so the copy runs the same conv kernel as the trained layer
        plain.weight = nn.Parameter(folded.detach().clone().to(conv.weight.device), requires_grad=False)
        if conv.bias is not None:
            plain.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
    return nn.Sequential(BinarySign(), plain) if conv.binary_activations else plain


@torch.no_grad()
def to_inference(model: nn.Module, weights: dict[str, Tensor] | None = None) -> nn.Module:
    """An eval-mode deep copy of `model` in which each `QuantConv2d` is a plain conv (plus `BinarySign`).

    Each conv's weight is `quantized_weight()` of the trained conv (beta * sign(W) when binary), or
    `weights[name]` when given (the packed loader passes the unpacked kernels). The copy computes exactly
    what `model` computes in eval mode and has no custom autograd functions, so it exports to ONNX.
    """
    weights = weights or {}
    copied = copy.deepcopy(model).eval()
    for name, module in list(copied.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, QuantConv2d):
                full = f"{name}.{child_name}" if name else child_name
                setattr(module, child_name, _plain(child, weights.get(full)))
    return copied.requires_grad_(False)
