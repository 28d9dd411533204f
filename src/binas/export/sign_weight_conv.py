"""`SignWeightConv2d`: a binary-weight conv on real activations, deployed as a BatchNorm-folded float conv.

The `released` policy's depth-wise, reduce and preprocess convs have binary weights but real inputs. Their
kernel sign(W) * scale (beta times the folded BatchNorm scale) runs as a float conv, the exact path for real
activations, and the module keeps the signs as int8 so the packed file and the int8 ONNX graph store them in
one bit (`DequantizeLinear` of the unpacked signs feeding a float `Conv` in ONNX).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from binas.export.signs import Geometry, pack_signs, pair, unpack_signs, unpack_signs_onnx


class _SignWeightConvOnnx(torch.autograd.Function):
    """Eager: the float conv. ONNX: int8 signs -> `DequantizeLinear` (per output channel) -> `Conv`."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, packed: Tensor, scale: Tensor, shift: Tensor, geometry: Geometry, shape: tuple[int, ...]
    ) -> Tensor:
        stride, padding, dilation, groups = geometry
        weight = unpack_signs(packed, shape).to(x.dtype) * scale.to(x.dtype).reshape(-1, 1, 1, 1)
        return F.conv2d(x, weight, shift.to(x.dtype), stride, padding, dilation, groups)

    @staticmethod
    def symbolic(
        g: Any, x: Any, packed: Any, scale: Any, shift: Any, geometry: Geometry, shape: tuple[int, ...]
    ) -> Any:
        stride, padding, dilation, groups = geometry
        weight = g.op("DequantizeLinear", unpack_signs_onnx(g, packed, shape), scale, axis_i=0)
        return g.op(
            "Conv",
            x,
            weight,
            shift,
            strides_i=list(stride),
            pads_i=list(padding) * 2,
            dilations_i=list(dilation),
            group_i=groups,
        )


class SignWeightConv2d(nn.Module):
    """A binary-weight conv on real activations: float conv with kernel sign(W) * scale, plus shift."""

    signs: Tensor
    packed_signs: Tensor
    scale: Tensor
    shift: Tensor
    weight: Tensor

    def __init__(
        self,
        signs: Tensor,
        scale: Tensor,
        shift: Tensor,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.register_buffer("signs", signs.to(torch.int8).contiguous())
        self.register_buffer("packed_signs", pack_signs(self.signs), persistent=False)  # for the ONNX graph
        self.kernel_shape = tuple(int(d) for d in signs.shape)
        self.register_buffer("scale", scale.detach().float().reshape(-1).contiguous())
        self.register_buffer("shift", shift.detach().float().reshape(-1).contiguous())
        weight = self.signs.float() * self.scale.reshape(-1, 1, 1, 1)
        # the kernel the float conv runs, channels_last like the activations (not saved: signs and scale are)
        self.register_buffer("weight", weight.contiguous(memory_format=torch.channels_last), persistent=False)
        self.stride, self.padding, self.dilation = pair(stride), pair(padding), pair(dilation)
        self.groups = int(groups)

    @property
    def out_channels(self) -> int:
        return int(self.signs.shape[0])

    @property
    def geometry(self) -> Geometry:
        return tuple(self.stride), tuple(self.padding), tuple(self.dilation), self.groups

    def float_forward(self, x: Tensor) -> Tensor:
        weight, shift = self.weight.to(x.dtype), self.shift.to(x.dtype)
        return F.conv2d(x, weight, shift, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, x: Tensor) -> Tensor:
        if torch.onnx.is_in_onnx_export():
            return _SignWeightConvOnnx.apply(
                x, self.packed_signs, self.scale, self.shift, self.geometry, self.kernel_shape
            )
        return self.float_forward(x)

    def extra_repr(self) -> str:
        c_out, c_in, kh, kw = self.signs.shape
        return (
            f"{c_in * self.groups}, {c_out}, kernel_size=({kh}, {kw}), stride={tuple(self.stride)}, "
            f"padding={tuple(self.padding)}, dilation={tuple(self.dilation)}, groups={self.groups}, w=1bit, a=32bit"
        )
