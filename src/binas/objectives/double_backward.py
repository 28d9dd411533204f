"""Fast double backward: convs and BatchNorms whose backward pass is cheap to differentiate.

The DCP-NAS curvature products differentiate through a `create_graph=True` backward: the GGN and
empirical-Fisher products get `J v` by the double-vjp trick (`binas.objectives.ggn`), the exact product
differentiates the α-gradient again. Two of PyTorch's double-backward formulas made that slow on the
CPU (the GGN product was 5x a plain forward + backward of the supernet, `benchmarks/search_cost.py` (a)):

* `aten::_convolution_double_backward` loops over the groups of a grouped conv, one kernel call per
  channel of a depth-wise conv (17,046 conv calls for 729 convs on a C=16, 5-cell supernet);
* the double backward of training-mode BatchNorm is a composite of ~20 small element-wise ops and sums.

`fast_double_backward()` routes `F.conv2d` (and, with `output_gradients_only`, training-mode
`F.batch_norm`) through `autograd.Function`s whose input gradient is itself a Function with a one-kernel
derivative in the output gradient: the forward conv for a conv's input gradient (`conv(·, w)` is the
adjoint of the transposed conv), and the BatchNorm input gradient for itself (the map `gy -> gx` of a
batch-statistics BN is symmetric). Forward values and first-order gradients are the same kernels as
PyTorch's.

* The conv Functions are closed under differentiation: every derivative stays exact (gradgradcheck).
* With `output_gradients_only`, the backward graph holds BatchNorm's batch statistics and the sign
  functions' surrogate slopes (`binas.quant.functional.constant_surrogate_slopes`) constant. That is
  exact in the *output gradients*, all that `J v = ∂(Jᵀu · v)/∂u` differentiates, and it keeps less
  of the graph alive; but a Hessian taken through it misses those curvature terms, so only the
  Gauss-Newton products use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.grad import conv2d_weight
from torch.overrides import TorchFunctionMode

from binas.quant.functional import constant_surrogate_slopes

_Pair = tuple[int, int]


def _pair(v: Any) -> _Pair:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _Conv(torch.autograd.Function):
    """`y = conv(x, w)` (no bias); the input gradient is `_ConvInputGrad`, the weight gradient PyTorch's."""

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        w: Tensor,
        stride: _Pair,
        padding: _Pair,
        dilation: _Pair,
        groups: int,
    ) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.conv = (stride, padding, dilation, groups)
        return F.conv2d(x, w, None, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, gy: Tensor) -> tuple[Tensor | None, ...]:
        x, w = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = _ConvInputGrad.apply(gy, w, x.detach(), stride, padding, dilation, groups)
        if ctx.needs_input_grad[1]:
            gw = conv2d_weight(x, w.shape, gy, stride, padding, dilation, groups)
        return gx, gw, None, None, None, None


class _ConvInputGrad(torch.autograd.Function):
    """`gx = ∂⟨gy, conv(x, w)⟩/∂x`: bilinear in (gy, w), independent of x; its gy-derivative is `conv(·, w)`."""

    @staticmethod
    def forward(
        ctx,
        gy: Tensor,
        w: Tensor,
        x: Tensor,
        stride: _Pair,
        padding: _Pair,
        dilation: _Pair,
        groups: int,
    ) -> Tensor:
        ctx.save_for_backward(gy if ctx.needs_input_grad[1] else None, w)
        ctx.conv = (stride, padding, dilation, groups)
        # The conv's input (its values unused) gives the kernel the shape and memory layout of the
        # gradient, as in the native backward; a zero-stride stand-in (`torch.nn.grad.conv2d_input`) gave
        # a layout that made the following element-wise backward ops 10x slower.
        return torch.ops.aten.convolution_backward(
            gy, x, w, None, stride, padding, dilation, False, (0, 0), groups, (True, False, False)
        )[0]

    @staticmethod
    def backward(ctx, ggx: Tensor) -> tuple[Tensor | None, ...]:
        gy, w = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv
        ggy = gw = None
        if ctx.needs_input_grad[0]:
            ggy = _Conv.apply(ggx, w, stride, padding, dilation, groups)
        if ctx.needs_input_grad[1]:
            # ⟨ggx, gx⟩ = ⟨conv(ggx, w), gy⟩: the w-gradient is the weight gradient of conv(ggx, ·) at gy.
            gw = conv2d_weight(ggx, w.shape, gy, stride, padding, dilation, groups)
        return ggy, gw, None, None, None, None, None


class _BatchNorm(torch.autograd.Function):
    """Training-mode BatchNorm (batch statistics, running statistics updated as by `F.batch_norm`)."""

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        momentum: float,
        eps: float,
    ) -> Tensor:
        y, mean, invstd = torch.ops.aten.native_batch_norm(
            x, weight, bias, running_mean, running_var, True, momentum, eps
        )
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, gy: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, mean, invstd = ctx.saved_tensors
        dims = (0,) + tuple(range(2, x.dim()))
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _BatchNormInputGrad.apply(
                gy, x.detach(), None if weight is None else weight.detach(), mean, invstd, ctx.eps
            )
        if ctx.needs_input_grad[1]:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            gw = (gy * ((x.detach() - mean.view(shape)) * invstd.view(shape))).sum(dims)
        if ctx.needs_input_grad[2]:
            gb = gy.sum(dims)
        return gx, gw, gb, None, None, None, None


class _BatchNormInputGrad(torch.autograd.Function):
    """`gx` of batch-statistics BN, linear in `gy` and symmetric, so its derivative is itself."""

    @staticmethod
    def forward(
        ctx,
        gy: Tensor,
        x: Tensor,
        weight: Tensor | None,
        mean: Tensor,
        invstd: Tensor,
        eps: float,
    ) -> Tensor:
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        return torch.ops.aten.native_batch_norm_backward(
            gy, x, weight, None, None, mean, invstd, True, eps, (True, False, False)
        )[0]

    @staticmethod
    def backward(ctx, ggx: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, mean, invstd = ctx.saved_tensors
        return _BatchNormInputGrad.apply(ggx, x, weight, mean, invstd, ctx.eps), None, None, None, None, None


def _conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    if isinstance(padding, str) or x.dim() != 4 or not (x.requires_grad or weight.requires_grad):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    y = _Conv.apply(x, weight, _pair(stride), _pair(padding), _pair(dilation), groups)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def _batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    if not training or x.dim() < 2 or x.numel() == x.shape[1]:  # F.batch_norm raises on one value per channel
        return F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    return _BatchNorm.apply(x, weight, bias, running_mean, running_var, momentum, eps)


def _autocast_on() -> bool:
    """Whether autocast is active on any device (the Functions save the uncast inputs, so they step aside)."""
    try:
        return any(torch.is_autocast_enabled(d) for d in ("cpu", "cuda"))
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()


class _FastDoubleBackwardMode(TorchFunctionMode):
    def __init__(self, routes: dict[Any, Any]) -> None:
        super().__init__()
        self.routes = routes

    def __torch_function__(self, func, types, args=(), kwargs=None):
        route = self.routes.get(func)
        if route is None or not torch.is_grad_enabled() or _autocast_on():
            return func(*args, **(kwargs or {}))
        return route(*args, **(kwargs or {}))


@contextmanager
def fast_double_backward(module: nn.Module | None = None, *, output_gradients_only: bool = False) -> Iterator[None]:
    """Inside, forwards build a backward graph that is fast to differentiate again (module docstring).

    Args:
        module: if given, its parameters are frozen (`requires_grad=False`) for the duration: the forward
            is for gradients w.r.t. other inputs (the architecture), and frozen weights spare the
            weight-gradient kernels in every pass (a Function cannot see which inputs `autograd.grad` asked
            for).
        output_gradients_only: the graph will be differentiated in the output gradients only (`J v`, the
            Gauss-Newton products): also route training-mode BatchNorm, and hold BN's batch statistics and
            the surrogate sign slopes constant in the backward graph. Not for a Hessian.
    """
    routes: dict[Any, Any] = {F.conv2d: _conv2d}
    if output_gradients_only:
        routes[F.batch_norm] = _batch_norm
    frozen = [p for p in module.parameters() if p.requires_grad] if module is not None else []
    for p in frozen:
        p.requires_grad_(False)
    try:
        with _FastDoubleBackwardMode(routes), constant_surrogate_slopes() if output_gradients_only else nullcontext():
            yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
