"""`IntegerConv2d`: a trained 1-bit x 1-bit conv and its BatchNorm, on an integer engine.

It computes what the trained binary conv (binary input, binary weight) followed by its BatchNorm computes
in eval mode, as ``acc * scale + shift``: ``acc`` is the exact integer accumulation of sign(x) * sign(W)
(int32) and ``scale``/``shift`` hold the weight scale beta and the folded BatchNorm. A product of two +-1
values is exact in int8, so an int8 conv with int32 accumulation gives the same integers as the float
conv on +-1 values, faster where the CPU has int8 kernels.

When the conv's only consumer is another 1-bit conv (`sign_output`), all the consumer needs is the sign
of ``acc * scale + shift``: an integer threshold on ``acc``. The conv then outputs that sign directly
(uint8 {0, 2} on oneDNN, the consumer's input format; +-1 floats elsewhere): ``v = 2 (acc - t) + 1`` is an
odd integer, never 0, and a hardtanh to [-1, 1] followed by the uint8 quantization (zero point 1) maps it
exactly to 0 or 2, inside the kernel. A channel with a negative scale counts ``-acc`` (its signs negated).

Engines (`ENGINES`):

* ``native``: binas's own kernels (`binas.export.native`, C compiled on first use): XNOR-popcount / byte
  tables for dense convs on sign bits, int8 lanes for depth-wise convs; a sign output stays a sign (int8
  +-1, or bits when the consumer is a dense conv), so chained 1-bit convs never build a float map. The
  default where a C compiler is available; per call it falls back to ``reference`` for geometries it does
  not cover (grouped convs other than depth-wise) and for inputs not on the CPU.
* ``onednn``: PyTorch's oneDNN int8 convolution (``torch.ops.onednn.qconv2d_pointwise``, the kernel behind
  PyTorch 2's x86 int8 inference): the sign is fused into the quantize step (``x >= 0`` into uint8 {0, 2}
  with zero point 1, so the conv sees exactly -1/+1 and its zero padding stays 0), and the scale and shift
  are applied by the kernel after the int32 accumulation (float32 output, or the sign as above).
* ``reference``: a float conv on +-1 values (exact: every partial sum is a small integer), then the
  scale and shift; runs on any device.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from binas.errors import ConfigError
from binas.export import native
from binas.export.signs import Geometry, pack_signs, pair, sign_to_uint8, unpack_signs, unpack_signs_onnx
from binas.quant.functional import hard_sign

Engine = Literal["native", "onednn", "reference"]
ENGINES: tuple[Engine, ...] = ("native", "onednn", "reference")
#: The uint8 input of the oneDNN conv: sign -1 -> 0, +1 -> 2, minus the zero point 1 gives -1 / +1.
_INPUT_ZERO_POINT = 1


def onednn_available() -> bool:
    """Whether PyTorch has the oneDNN int8 conv ops (x86 CPU builds of PyTorch 2.x)."""
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.onednn, "qconv_prepack")
        and hasattr(torch.ops.onednn, "qconv2d_pointwise")
    )


def engine_available(engine: Engine) -> bool:
    return {"native": native.available, "onednn": onednn_available}.get(engine, lambda: True)()


def require_engine(engine: Engine) -> Engine:
    """`engine`, checked to exist and to run here (a one-line `ConfigError` otherwise)."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown integer engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if not engine_available(engine):
        why = "no C compiler found, or BINAS_NATIVE=0" if engine == "native" else "this PyTorch build lacks it"
        raise ConfigError(f"the {engine!r} integer engine is not available on this machine ({why})")
    return engine


def default_engine() -> Engine:
    """The fastest engine this machine has: `native`, else `onednn`, else `reference`."""
    return next(engine for engine in ENGINES if engine_available(engine))


def sign_threshold(scale: Tensor, shift: Tensor, fan_in: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per channel (flip, weight, bias) with sign(acc * scale + shift) = sign(weight * (flip * acc) + bias).

    flip is -1 where scale < 0, weight is 2 (0 where scale = 0: a constant sign), bias an odd integer, so
    the right-hand value is an odd integer and never 0 (ties at exactly 0 count as +1, as in training).
    The threshold is clamped to +-(fan_in + 1): beyond the largest |acc| the sign is constant anyway.
    """
    s, b = scale.double().reshape(-1), shift.double().reshape(-1)
    bound = float(fan_in + 1)
    safe = torch.where(s == 0, torch.ones_like(s), s)
    t = (-b / safe).clamp(-bound, bound)
    # scale > 0: +1 iff acc >= ceil(t); scale < 0: +1 iff -acc >= -floor(t)
    threshold = torch.where(s > 0, torch.ceil(t), -torch.floor(t))
    bias = torch.where(s == 0, torch.where(b >= 0, 1.0, -1.0), 1.0 - 2.0 * threshold)
    weight = torch.where(s == 0, 0.0, 2.0)
    flip = torch.where(s < 0, -1, 1).to(torch.int8)
    return flip, weight.float(), bias.float()


class _IntegerConvOnnx(torch.autograd.Function):
    """Eager: the reference computation. ONNX: sign -> int8, `ConvInteger` (int32), `Cast`, `Mul`, `Add`
    (and `Greater` + `Where` for a sign output)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        packed: Tensor,
        scale: Tensor,
        shift: Tensor,
        geometry: Geometry,
        shape: tuple[int, ...],
        sign_output: bool,
    ) -> Tensor:
        stride, padding, dilation, groups = geometry
        signs = unpack_signs(packed, shape).to(x.dtype)
        value = torch.addcmul(shift, F.conv2d(hard_sign(x), signs, None, stride, padding, dilation, groups), scale)
        return torch.where(value > 0, 1.0, -1.0).to(x.dtype) if sign_output else value

    @staticmethod
    def symbolic(
        g: Any,
        x: Any,
        packed: Any,
        scale: Any,
        shift: Any,
        geometry: Geometry,
        shape: tuple[int, ...],
        sign_output: bool,
    ) -> Any:
        stride, padding, dilation, groups = geometry

        def const(value: Tensor) -> Any:
            return g.op("Constant", value_t=value)

        plus, minus = const(torch.tensor(1, dtype=torch.int8)), const(torch.tensor(-1, dtype=torch.int8))
        x_int = g.op("Where", g.op("GreaterOrEqual", x, const(torch.tensor(0.0))), plus, minus)
        acc = g.op(
            "ConvInteger",
            x_int,
            unpack_signs_onnx(g, packed, shape),
            strides_i=list(stride),
            pads_i=list(padding) * 2,
            dilations_i=list(dilation),
            group_i=groups,
        )
        value = g.op("Add", g.op("Mul", g.op("Cast", acc, to_i=1), scale), shift)  # 1: FLOAT
        if not sign_output:
            return value
        positive = g.op("Greater", value, const(torch.tensor(0.0)))
        return g.op("Where", positive, const(torch.tensor(1.0)), const(torch.tensor(-1.0)))


class IntegerConv2d(nn.Module):
    """sign(x) conv sign(W) with int32 accumulation, then ``acc * scale + shift`` per output channel.

    Args:
        signs: the weight signs as int8 +-1, shape (C_out, C_in / groups, k, k).
        scale, shift: per-output-channel float32 (beta times the BatchNorm scale; the BatchNorm shift).
        engine: `onednn` or `reference` (see the module docstring); `onednn` falls back to `reference` for
            inputs not on the CPU.
    """

    signs: Tensor
    scale: Tensor
    shift: Tensor
    zero_points: Tensor
    out_signs: Tensor
    packed_out_signs: Tensor
    out_scale: Tensor
    out_shift: Tensor
    out_threshold: Tensor

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
        self.register_buffer("scale", scale.detach().float().reshape(-1).contiguous())
        self.register_buffer("shift", shift.detach().float().reshape(-1).contiguous())
        # the weights' zero points, which oneDNN takes on every call (allocated once, not saved)
        self.register_buffer("zero_points", torch.zeros(self.signs.shape[0], dtype=torch.int64), persistent=False)
        self.kernel_shape = tuple(int(d) for d in signs.shape)
        self.stride, self.padding, self.dilation = pair(stride), pair(padding), pair(dilation)
        self.groups = int(groups)
        self.engine: Engine = engine
        self._packed: dict[str, Any] = {}  # engine weights: "out" (forward), "unit" (sums); oneDNN's or native
        self.sign_bits = False
        self._set_output(False)

    def _set_output(self, sign_output: bool) -> None:
        """What the forward computes: the affine value, or its sign (the buffers below, not saved)."""
        self.sign_output = sign_output
        signs, scale, shift = self.signs, self.scale, self.shift
        threshold = torch.zeros(self.out_channels, dtype=torch.int32)
        if sign_output:
            flip, scale, shift = sign_threshold(self.scale, self.shift, math.prod(self.kernel_shape[1:]))
            signs = signs * flip.reshape(-1, 1, 1, 1)
            # +1 iff weight * acc + bias > 0: acc >= (1 - bias) / 2 (weight 2), or a constant sign (weight 0)
            bound = 2**30
            constant = torch.where(shift > 0, -bound, bound)
            threshold = torch.where(scale > 0, torch.round((1 - shift) / 2), constant).to(torch.int32)
        self.register_buffer("out_threshold", threshold.contiguous(), persistent=False)
        self.register_buffer("out_signs", signs.contiguous(), persistent=False)
        self.register_buffer("packed_out_signs", pack_signs(signs), persistent=False)  # the ONNX graph's
        self.register_buffer("out_scale", scale.contiguous(), persistent=False)
        self.register_buffer("out_shift", shift.contiguous(), persistent=False)
        self._packed.pop("out", None)

    def output_sign(self, bits: bool = False) -> None:
        """Output sign(acc * scale + shift) instead of the value: for a conv whose only consumer is a 1-bit
        conv (`binas.export.deploy` decides). `bits`: on the native engine, as sign bits (for a consumer that
        `prefers_bits`) rather than int8 +-1."""
        self._set_output(True)
        self.sign_bits = bits

    def native_supported(self) -> bool:
        return self.engine == "native" and native.NativeConv.supports(self.kernel_shape, self.groups)

    def prefers_bits(self) -> bool:
        """Whether this conv, on the native engine, reads sign bits (a dense conv) rather than int8 signs."""
        return self.native_supported() and self.groups == 1

    @property
    def out_channels(self) -> int:
        return int(self.signs.shape[0])

    @property
    def geometry(self) -> Geometry:
        return tuple(self.stride), tuple(self.padding), tuple(self.dilation), self.groups

    def __getstate__(self) -> dict[str, Any]:  # deepcopy / pickle: the prepacked weights are rebuilt lazily
        state = self.__dict__.copy()
        state["_packed"] = {}
        return state

    def _native_conv(self, which: str) -> native.NativeConv:
        if which not in self._packed:
            signs = self.out_signs if which == "out" else self.signs
            self._packed[which] = native.NativeConv(signs, self.stride, self.padding, self.dilation, self.groups)
        return self._packed[which]

    def _native(self, x: Tensor, mode: int) -> Tensor:
        which = "unit" if mode == native.ACC else "out"
        return self._native_conv(which)(x, mode, self.out_scale, self.out_shift, self.out_threshold)

    def fuses_nodes(self) -> bool:
        """Whether this conv can compute a DARTS cell node in one pass (`node`): native, value output, a 1x1
        table conv with outputs in 16s, on a machine with the kernels."""
        return (
            self.native_supported()
            and not self.sign_output
            and native.available()
            and self._native_conv("out").fuses_nodes()
        )

    def node(self, x: Tensor, addend: Tensor | None, target: native.NodeTarget, in_place: bool) -> Tensor | None:
        """This conv's value plus `addend` in one pass, written as `target` says (`native.NativeConv.node`)."""
        return self._native_conv("out").node(x, self.out_scale, self.out_shift, addend, target, in_place)

    def _uses_native(self, x: Tensor) -> bool:
        width = x.shape[2] if x.dtype == native.BITS_DTYPE else x.shape[-1]  # bits: (N, H, W, words)
        return (
            x.device.type == "cpu"
            and self.native_supported()
            and native.available()
            and width * self.out_channels <= native.MAX_ROW  # the kernels' row buffers (else: reference)
        )

    def _prepacked(self, which: str) -> Tensor:
        if which not in self._packed:
            signs, scales = (self.out_signs, self.out_scale) if which == "out" else (self.signs, self._ones())
            self._packed[which] = torch.ops.onednn.qconv_prepack(
                signs, scales, 1.0, _INPUT_ZERO_POINT, self.stride, self.padding, self.dilation, self.groups, None
            )
        return self._packed[which]

    def _ones(self) -> Tensor:
        return torch.ones(self.out_channels)

    def _onednn(self, x: Tensor, which: str) -> Tensor:
        # the sign fused into the quantize step (zero point 1: -1 / +1); a sign output arrives quantized
        q = x if x.dtype == torch.uint8 else sign_to_uint8(x)
        scales, bias = (self.out_scale, self.out_shift) if which == "out" else (self._ones(), None)
        signed = which == "out" and self.sign_output
        return torch.ops.onednn.qconv2d_pointwise(
            q,
            1.0,
            _INPUT_ZERO_POINT,
            self._prepacked(which),
            scales,
            self.zero_points,
            bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            1.0,
            _INPUT_ZERO_POINT if signed else 0,
            torch.uint8 if signed else torch.float32,
            "hardtanh" if signed else "none",
            [-1.0, 1.0] if signed else [],
            "",
        )

    def _uses_onednn(self, x: Tensor) -> bool:
        return self.engine == "onednn" and x.device.type == "cpu" and x.dtype in (torch.float32, torch.uint8)

    def _conv(self, x: Tensor, signs: Tensor) -> Tensor:
        if x.dtype == torch.uint8:  # a oneDNN sign output (2 = +1, 0 = -1) reaching the reference path
            x = x.float() - _INPUT_ZERO_POINT
        elif x.dtype == native.BITS_DTYPE:  # native sign bits (N, H, W, words)
            x = native.unpack_bits(x, self.kernel_shape[1] * self.groups)
        elif x.dtype == torch.int8:  # native int8 signs
            x = x.float()
        x = hard_sign(x)
        return F.conv2d(x, signs.to(x.dtype), None, self.stride, self.padding, self.dilation, self.groups)

    def reference(self, x: Tensor) -> Tensor:
        """The float path: exact integer sums of +-1 products, then the per-channel scale and shift (or sign)."""
        value = torch.addcmul(
            self.out_shift.reshape(-1, 1, 1), self._conv(x, self.out_signs), self.out_scale.reshape(-1, 1, 1)
        )
        return torch.where(value > 0, 1.0, -1.0).to(value.dtype) if self.sign_output else value

    @torch.no_grad()
    def accumulate(self, x: Tensor) -> Tensor:
        """The int32 accumulation of sign(x) * sign(W) as this conv's engine computes it (for equality tests)."""
        if self._uses_native(x):
            return self._native(x, native.ACC)
        acc = self._onednn(x, "unit") if self._uses_onednn(x) else self._conv(x, self.signs)
        return acc.to(torch.int32)

    def forward(self, x: Tensor) -> Tensor:
        if torch.onnx.is_in_onnx_export():
            scale, shift = self.out_scale.reshape(-1, 1, 1), self.out_shift.reshape(-1, 1, 1)
            packed, shape = self.packed_out_signs, self.kernel_shape
            return _IntegerConvOnnx.apply(x, packed, scale, shift, self.geometry, shape, self.sign_output)
        if self._uses_native(x):
            mode = (native.BITS if self.sign_bits else native.SIGN) if self.sign_output else native.VALUE
            return self._native(x, mode)
        if self._uses_onednn(x):
            return self._onednn(x, "out")
        return self.reference(x)

    def extra_repr(self) -> str:
        c_out, c_in, kh, kw = self.kernel_shape
        return (
            f"{c_in * self.groups}, {c_out}, kernel_size=({kh}, {kw}), stride={tuple(self.stride)}, "
            f"padding={tuple(self.padding)}, dilation={tuple(self.dilation)}, groups={self.groups}, "
            f"w=1bit, a=1bit, engine={self.engine}{', sign output' if self.sign_output else ''}"
            f"{' (bits)' if self.sign_output and self.sign_bits else ''}"
        )
