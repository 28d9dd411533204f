"""The deployed convolutions: 1-bit x 1-bit convs on an integer engine, and BatchNorm-folded float convs.

`IntegerConv2d` computes what a trained binary conv (binary input, binary weight) followed by its BatchNorm
computes in eval mode, as ``acc * scale + shift`` where ``acc`` is the exact integer accumulation of
sign(x) * sign(W) (int32) and ``scale``/``shift`` hold the weight scale beta and the folded BatchNorm.
A product of two +-1 values is exact in int8, so an int8 conv with int32 accumulation gives the same
integers as the float conv on +-1 values, faster where the CPU has int8 kernels.

Engines (`ENGINES`):

* ``onednn``: PyTorch's oneDNN int8 convolution (``torch.ops.onednn.qconv2d_pointwise``, the kernel behind
  PyTorch 2's x86 int8 inference) with a float32 output: the sign is fused into the quantize step (one
  ``x >= 0`` into uint8 values {0, 2} with zero point 1, so the conv sees exactly -1/+1 and its zero
  padding stays 0), and the scale and shift are applied by the kernel after the int32 accumulation.
* ``reference``: a float conv on +-1 values (exact: every partial sum is a small integer), then the
  scale and shift; runs on any device.

`SignWeightConv2d` is a binary-weight conv on real activations (the `released` policy's depth-wise,
reduce and preprocess convs): its kernel sign(W) * scale with the BatchNorm folded in runs as a float conv
(the exact path: the activations are real), and it keeps the signs as int8 so a packed file or an int8
ONNX graph stores them in 1 or 8 bits.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from binas.quant.functional import hard_sign

Engine = Literal["onednn", "reference"]
ENGINES: tuple[Engine, ...] = ("onednn", "reference")
#: The uint8 input of the oneDNN conv: sign -1 -> 0, +1 -> 2, minus the zero point 1 gives -1 / +1.
_INPUT_ZERO_POINT = 1


def onednn_available() -> bool:
    """Whether PyTorch has the oneDNN int8 conv ops (x86 CPU builds of PyTorch 2.x)."""
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.onednn, "qconv_prepack")
        and hasattr(torch.ops.onednn, "qconv2d_pointwise")
    )


def default_engine() -> Engine:
    return "onednn" if onednn_available() else "reference"


def sign_to_uint8(x: Tensor) -> Tensor:
    """hard_sign(x) quantized for the oneDNN conv: 2 where x >= 0, else 0, as a channels_last uint8 tensor.

    NumPy's `greater_equal` does it in one vectorized pass over the channels_last storage, 5-7x faster than
    `torch.ge` on this CPU build (benchmarks/inference.py, `sign_quantize`); NaN maps to 0 (sign -1).
    """
    nhwc = x.detach().contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)
    q = np.greater_equal(nhwc.numpy(), 0).view(np.uint8)
    np.add(q, q, out=q)
    return torch.from_numpy(q).permute(0, 3, 1, 2)


def _pair(value: Any) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * 2


Geometry = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int]
_BIT_SHIFTS = (7, 6, 5, 4, 3, 2, 1, 0)  # numpy packbits order: the first sign in the highest bit


def pack_signs(signs: Tensor) -> Tensor:
    """int8 +-1 signs as bits (1 = +1), numpy `packbits` order, one uint8 per 8 signs."""
    return torch.from_numpy(np.packbits(signs.detach().cpu().numpy().reshape(-1) > 0))


def unpack_signs(packed: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The inverse of `pack_signs`: int8 +-1 signs of the given shape."""
    shifts = torch.tensor(_BIT_SHIFTS, dtype=torch.uint8)
    bits = (packed.unsqueeze(-1) >> shifts).bitwise_and(1).reshape(-1)[: math.prod(shape)]
    return (bits.to(torch.int8) * 2 - 1).reshape(shape)


def _unpack_signs_onnx(g: Any, packed: Any, shape: tuple[int, ...]) -> Any:
    """ONNX nodes computing `unpack_signs`: the file stores 1 bit per weight, and a runtime that folds
    constants (ONNX Runtime does, at session start) unpacks them once."""

    def const(value: Tensor) -> Any:
        return g.op("Constant", value_t=value)

    expanded = g.op("Unsqueeze", packed, const(torch.tensor([-1])))
    shifted = g.op("BitShift", expanded, const(torch.tensor(_BIT_SHIFTS, dtype=torch.uint8)), direction_s="RIGHT")
    bits = g.op("Mod", g.op("Cast", shifted, to_i=6), const(torch.tensor(2, dtype=torch.int32)))  # 6: INT32
    flat = g.op("Reshape", bits, const(torch.tensor([-1])))
    n = math.prod(shape)
    flat = g.op("Slice", flat, const(torch.tensor([0])), const(torch.tensor([n])))
    is_plus = g.op("Cast", flat, to_i=9)  # 9: BOOL
    signs = g.op("Where", is_plus, const(torch.tensor(1, dtype=torch.int8)), const(torch.tensor(-1, dtype=torch.int8)))
    return g.op("Reshape", signs, const(torch.tensor(list(shape))))


class _IntegerConvOnnx(torch.autograd.Function):
    """Eager: the reference computation. ONNX: sign -> int8, `ConvInteger` (int32), `Cast`, `Mul`, `Add`."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, packed: Tensor, scale: Tensor, shift: Tensor, geometry: Geometry, shape: tuple[int, ...]
    ) -> Tensor:
        stride, padding, dilation, groups = geometry
        signs = unpack_signs(packed, shape).to(x.dtype)
        return torch.addcmul(shift, F.conv2d(hard_sign(x), signs, None, stride, padding, dilation, groups), scale)

    @staticmethod
    def symbolic(
        g: Any, x: Any, packed: Any, scale: Any, shift: Any, geometry: Geometry, shape: tuple[int, ...]
    ) -> Any:
        stride, padding, dilation, groups = geometry
        signs = _unpack_signs_onnx(g, packed, shape)
        zero = g.op("Constant", value_t=torch.tensor(0.0))
        plus = g.op("Constant", value_t=torch.tensor(1, dtype=torch.int8))
        minus = g.op("Constant", value_t=torch.tensor(-1, dtype=torch.int8))
        x_int = g.op("Where", g.op("GreaterOrEqual", x, zero), plus, minus)
        acc = g.op(
            "ConvInteger",
            x_int,
            signs,
            strides_i=list(stride),
            pads_i=list(padding) * 2,
            dilations_i=list(dilation),
            group_i=groups,
        )
        acc_float = g.op("Cast", acc, to_i=1)  # onnx.TensorProto.FLOAT
        return g.op("Add", g.op("Mul", acc_float, scale), shift)


class IntegerConv2d(nn.Module):
    """sign(x) conv sign(W) with int32 accumulation, then ``acc * scale + shift`` per output channel.

    Args:
        signs: the weight signs as int8 +-1, shape (C_out, C_in / groups, k, k).
        scale, shift: per-output-channel float32 (beta times the BatchNorm scale; the BatchNorm shift).
        engine: `onednn` or `reference` (see the module docstring); `onednn` falls back to `reference` for
            inputs not on the CPU.
    """

    signs: Tensor
    packed_signs: Tensor
    scale: Tensor
    shift: Tensor

    def __init__(
        self,
        signs: Tensor,
        scale: Tensor,
        shift: Tensor,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        engine: Engine = "reference",
    ) -> None:
        super().__init__()
        if engine not in ENGINES:
            raise ValueError(f"unknown integer conv engine {engine!r}; choose one of: {', '.join(ENGINES)}")
        self.register_buffer("signs", signs.to(torch.int8).contiguous())
        self.register_buffer("packed_signs", pack_signs(self.signs), persistent=False)  # for the ONNX graph
        self.kernel_shape = tuple(int(d) for d in signs.shape)
        self.register_buffer("scale", scale.detach().float().reshape(1, -1, 1, 1).contiguous())
        self.register_buffer("shift", shift.detach().float().reshape(1, -1, 1, 1).contiguous())
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.groups = int(groups)
        self.engine: Engine = engine
        self._packed: dict[bool, Tensor] = {}  # oneDNN's prepacked weight, with and without the scale

    @property
    def out_channels(self) -> int:
        return int(self.signs.shape[0])

    @property
    def geometry(self) -> Geometry:
        return tuple(self.stride), tuple(self.padding), tuple(self.dilation), self.groups

    def __getstate__(self) -> dict[str, Any]:  # deepcopy / pickle: the prepacked weight is rebuilt lazily
        state = self.__dict__.copy()
        state["_packed"] = {}
        return state

    def _prepacked(self, scaled: bool) -> Tensor:
        if scaled not in self._packed:
            scales = self.scale.reshape(-1) if scaled else torch.ones(self.out_channels)
            self._packed[scaled] = torch.ops.onednn.qconv_prepack(
                self.signs, scales, 1.0, _INPUT_ZERO_POINT, self.stride, self.padding, self.dilation, self.groups, None
            )
        return self._packed[scaled]

    def _onednn(self, x: Tensor, scaled: bool) -> Tensor:
        q = sign_to_uint8(x)  # the sign fused into the quantize step (zero point 1: -1 / +1)
        scales = self.scale.reshape(-1) if scaled else torch.ones(self.out_channels)
        bias = self.shift.reshape(-1) if scaled else None
        zero_points = torch.zeros(self.out_channels, dtype=torch.int64)
        return torch.ops.onednn.qconv2d_pointwise(
            q,
            1.0,
            _INPUT_ZERO_POINT,
            self._prepacked(scaled),
            scales,
            zero_points,
            bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            1.0,
            0,
            torch.float32,
            "none",
            [],
            "",
        )

    def _uses_onednn(self, x: Tensor) -> bool:
        return self.engine == "onednn" and x.device.type == "cpu" and x.dtype == torch.float32

    def reference(self, x: Tensor) -> Tensor:
        """The float path: exact integer sums of +-1 products, then the per-channel scale and shift."""
        return torch.addcmul(self.shift, self.accumulate_reference(x), self.scale)

    def accumulate_reference(self, x: Tensor) -> Tensor:
        """The integer accumulation computed by a float conv on +-1 values (float32 holding integers)."""
        return F.conv2d(
            hard_sign(x), self.signs.to(x.dtype), None, self.stride, self.padding, self.dilation, self.groups
        )

    @torch.no_grad()
    def accumulate(self, x: Tensor) -> Tensor:
        """The int32 accumulation of sign(x) * sign(W) as this conv's engine computes it (for equality tests)."""
        acc = self._onednn(x, scaled=False) if self._uses_onednn(x) else self.accumulate_reference(x)
        return acc.to(torch.int32)

    def forward(self, x: Tensor) -> Tensor:
        if torch.onnx.is_in_onnx_export():
            scale, shift = self.scale.reshape(-1, 1, 1), self.shift.reshape(-1, 1, 1)
            return _IntegerConvOnnx.apply(x, self.packed_signs, scale, shift, self.geometry, self.kernel_shape)
        if self._uses_onednn(x):
            return self._onednn(x, scaled=True)
        return self.reference(x)

    def extra_repr(self) -> str:
        c_out, c_in, kh, kw = self.signs.shape
        return (
            f"{c_in * self.groups}, {c_out}, kernel_size=({kh}, {kw}), stride={tuple(self.stride)}, "
            f"padding={tuple(self.padding)}, dilation={tuple(self.dilation)}, groups={self.groups}, "
            f"w=1bit, a=1bit, engine={self.engine}"
        )


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
        weight = g.op("DequantizeLinear", _unpack_signs_onnx(g, packed, shape), scale, axis_i=0)
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
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
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
