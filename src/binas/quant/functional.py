"""Sign functions with named surrogate gradients, as `torch.autograd.Function`s.

Forward is always a hard sign with `sign(0) = +1`, so outputs are strictly in {-1, +1}
(`torch.sign` maps 0 to 0, which would make a "1-bit" tensor ternary).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import Tensor

#: Multiplier of |M| in the released DCP-NAS learned-scale conv (spec §3.2b, `MFunction_new.py`).
LEARNED_SCALE_MULTIPLIER = 0.02
#: Weight of the reconstruction term folded into that conv's custom backward (spec §3.2b).
LEARNED_SCALE_RECON_WEIGHT = 1e-4


#: Set by `constant_surrogate_slopes`; read by the sign Functions' forwards (their backward runs later).
_CONSTANT_SLOPES: ContextVar[bool] = ContextVar("binas_constant_surrogate_slopes", default=False)


@contextmanager
def constant_surrogate_slopes() -> Iterator[None]:
    """Signs applied inside build backward graphs whose surrogate slope is a constant of the graph.

    The first-order gradient is unchanged. What changes is a `create_graph=True` backward: ApproxSign's
    slope `clamp(2 − 2|x|, 0)` is then not differentiated in x. `J v` (the Gauss-Newton curvature
    products) differentiates only in the output gradients, so it is unaffected, and the graph no longer
    keeps every output gradient alive for that x-derivative: 2.3 GB less peak memory in the DCP-NAS
    Child's α-pass at the CIFAR search size. A Hessian through it would miss the slope's curvature.
    """
    token = _CONSTANT_SLOPES.set(True)
    try:
        yield
    finally:
        _CONSTANT_SLOPES.reset(token)


def hard_sign(x: Tensor) -> Tensor:
    """sign(x) with sign(0) = +1 (NaN stays NaN, for the NaN guard), no gradient.

    `torch.sign` plus the zero indicator: on the CPU 3-4x faster than a `torch.where` on x >= 0, which
    matters because a 1-bit supernet signs every activation of every cell.
    """
    x = x.detach()
    return torch.sign(x).add_(x == 0)


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, clip: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.clip = clip
        return hard_sign(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= ctx.clip).to(grad.dtype), None


class _ApproxSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        ctx.constant_slope = _CONSTANT_SLOPES.get()
        return hard_sign(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        if ctx.constant_slope:
            x = x.detach()
        # Derivative of Bi-Real Net's piecewise polynomial (Liu et al., ECCV 2018, Eq. 5):
        # 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 elsewhere.
        # = 2 - 2|x| clipped at 0: the same values, one fused expression instead of masks and two `where`s
        # (14x faster on the CPU).
        return grad * (2 - 2 * x.abs()).clamp_min_(0)


class _LearnedScaleSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w: Tensor, m: Tensor) -> Tensor:
        wq = LEARNED_SCALE_MULTIPLIER * hard_sign(w) * m.abs()
        ctx.save_for_backward(w, m, wq)
        return wq

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        w, m, wq = ctx.saved_tensors
        residual = w - wq
        # Released DCP-NAS `MFunction_new.py` (spec §3.2b): no clipping, reconstruction gradient
        # folded in with weight 1e-4.
        grad_w = grad * m.abs() + LEARNED_SCALE_RECON_WEIGHT * residual
        reduce_dims = tuple(range(1, w.dim()))
        grad_m = (grad * w).sum(dim=reduce_dims, keepdim=True) - LEARNED_SCALE_RECON_WEIGHT * (
            residual * LEARNED_SCALE_MULTIPLIER * hard_sign(w)
        ).sum(dim=reduce_dims, keepdim=True)
        return grad_w, grad_m


def sign_ste(x: Tensor, clip: float = 1.0) -> Tensor:
    """Sign with the clipped straight-through estimator: d sign(x)/dx := 1_{|x| <= clip}.

    DCP-NAS Eq. 4.35 (weights); Hubara et al., 2016.
    """
    return _SignSTE.apply(x, clip)


def approx_sign(x: Tensor) -> Tensor:
    """Sign with Bi-Real Net's ApproxSign backward (2 + 2x on [-1, 0), 2 - 2x on [0, 1), else 0)."""
    return _ApproxSign.apply(x)


def learned_scale_sign(w: Tensor, m: Tensor) -> Tensor:
    """The released DCP-NAS weight binarizer: forward 0.02 * sign(w) * |m| with its custom backward.

    `m` has shape (C_out, 1, 1, 1). See spec §3.2b for the backward (which is not the autograd
    derivative of the forward: it adds a 1e-4-weighted reconstruction gradient and does not clip).
    """
    return _LearnedScaleSign.apply(w, m)


def mean_abs_scale(w: Tensor) -> Tensor:
    """Per-output-channel scale beta = mean |W| over (C_in, k, k), detached (Bi-Real / ReActNet)."""
    return w.detach().abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)


def scaled_sign_ste(w: Tensor, clip: float = 1.0) -> Tensor:
    """beta * sign(w) with beta = mean |W| (detached) and gradient 1_{|w| <= clip} w.r.t. w.

    The forward equals beta * sign(w); the backward is the clipped STE without the beta factor,
    as in `HardBinaryConv` of the DCP-NAS release (spec §3.2a).
    """
    clipped = w.clamp(-clip, clip)
    # Forward value is exactly beta * sign(w) (the zero-valued term only carries the gradient).
    return (mean_abs_scale(w) * hard_sign(w)).detach() + (clipped - clipped.detach())
