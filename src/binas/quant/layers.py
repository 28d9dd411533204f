"""`QuantConv2d`: a conv whose input and weight pass through optional quantizers.

With both quantizers `None` it computes exactly `nn.Conv2d`, which is how the real-valued DCP-NAS
Parent and the 1-bit Child come from one op table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from binas.quant.quantizers import (
    ActQuantizer,
    WeightQuantizer,
    make_act_quantizer,
    make_weight_quantizer,
)


class QuantConv2d(nn.Conv2d):
    """Conv2d with `input_quantizer` (on the activations) and `weight_quantizer` (on the kernel).

    Quantizers are given by registry name (built with the entries of `quantizer_args` they take, e.g. the
    STE `clip`) or as objects.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
        *,
        input_quantizer: str | ActQuantizer | None = None,
        weight_quantizer: str | WeightQuantizer | None = None,
        quantizer_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=bias)
        self.input_quantizer = make_act_quantizer(input_quantizer, quantizer_args)
        self.weight_quantizer = make_weight_quantizer(weight_quantizer, out_channels, quantizer_args)

    @property
    def binary_weights(self) -> bool:
        return self.weight_quantizer is not None

    @property
    def binary_activations(self) -> bool:
        return self.input_quantizer is not None

    def quantized_weight(self) -> Tensor:
        """The kernel the forward uses: beta * sign(W) when binary, W otherwise."""
        if self.weight_quantizer is None:
            return self.weight
        return self.weight_quantizer(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        if self.input_quantizer is not None:
            x = self.input_quantizer(x)
        return F.conv2d(x, self.quantized_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        bits = f"w={'1' if self.binary_weights else '32'}bit, a={'1' if self.binary_activations else '32'}bit"
        return f"{super().extra_repr()}, {bits}"


def quant_convs(module: nn.Module) -> list[QuantConv2d]:
    """All `QuantConv2d` layers of `module` with binary weights, in module order."""
    return [m for m in module.modules() if isinstance(m, QuantConv2d) and m.binary_weights]
