"""Sign functions and their surrogate gradients against hand-computed tensors (spec §3.1-§3.2)."""

from __future__ import annotations

import pytest
import torch

from binas.quant.functional import (
    LEARNED_SCALE_MULTIPLIER,
    LEARNED_SCALE_RECON_WEIGHT,
    approx_sign,
    hard_sign,
    learned_scale_sign,
    mean_abs_scale,
    scaled_sign_ste,
    sign_ste,
)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def value_and_grad(fn, x: torch.Tensor, upstream: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    x = x.clone().requires_grad_(True)
    y = fn(x)
    y.backward(upstream)
    assert x.grad is not None
    return y.detach(), x.grad


def test_hard_sign_maps_zero_to_plus_one() -> None:
    x = t(-3.0, -1e-8, -0.0, 0.0, 1e-8, 2.0)
    assert torch.equal(hard_sign(x), t(-1, -1, 1, 1, 1, 1))
    assert not hard_sign(x.requires_grad_(True)).requires_grad


@pytest.mark.parametrize(
    ("clip", "grad_mask"),
    [
        # x = -2, -1, -0.5, 0, 0.5, 1, 1.0001, 3: gradient 1 inside the clip, clip itself included
        (1.0, (0, 1, 1, 1, 1, 1, 0, 0)),
        (0.5, (0, 0, 1, 1, 1, 0, 0, 0)),
    ],
)
def test_sign_ste(clip: float, grad_mask: tuple[int, ...]) -> None:
    x = t(-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0001, 3.0)
    upstream = t(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    y, g = value_and_grad(lambda v: sign_ste(v, clip), x, upstream)
    assert torch.equal(y, t(-1, -1, -1, 1, 1, 1, 1, 1))
    assert torch.equal(g, upstream * t(*grad_mask))


def test_sign_ste_default_clip_is_one() -> None:
    _, g = value_and_grad(sign_ste, t(-1.0, 1.0, 1.5), t(1.0, 1.0, 1.0))
    assert torch.equal(g, t(1, 1, 0))


def test_approx_sign_gradient_is_bireal_polynomial_derivative() -> None:
    x = t(-1.5, -1.0, -0.75, -0.25, 0.0, 0.25, 0.75, 1.0, 1.5)
    # 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 elsewhere (so 0 at -1, 2 at 0, 0 at 1)
    expected = t(0.0, 0.0, 0.5, 1.5, 2.0, 1.5, 0.5, 0.0, 0.0)
    upstream = t(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -3.0)
    y, g = value_and_grad(approx_sign, x, upstream)
    assert torch.equal(y, t(-1, -1, -1, -1, 1, 1, 1, 1, 1))
    assert torch.equal(g, expected * upstream)
    _, g2 = value_and_grad(approx_sign, t(-0.5, 0.5), t(-2.0, 10.0))
    assert torch.equal(g2, t(-2.0, 10.0))  # slope 1 at +-0.5 times the upstream gradient


def test_mean_abs_scale_per_output_channel_and_detached() -> None:
    w = t(0.5, -1.5, 0.0, 2.0, -0.2, 0.4, -0.6, 0.2).reshape(2, 1, 2, 2).requires_grad_(True)
    beta = mean_abs_scale(w)
    assert beta.shape == (2, 1, 1, 1) and not beta.requires_grad
    assert torch.allclose(beta.flatten(), t(1.0, 0.35))


def test_scaled_sign_ste_forward_and_unscaled_clipped_gradient() -> None:
    w = t(0.5, -1.5, 0.0, 2.0, -0.2, 0.4, -0.6, 0.2).reshape(2, 1, 2, 2)
    upstream = t(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0).reshape(2, 1, 2, 2)
    y, g = value_and_grad(scaled_sign_ste, w, upstream)
    expected = t(1.0, -1.0, 1.0, 1.0, -0.35, 0.35, -0.35, 0.35).reshape(2, 1, 2, 2)
    assert torch.allclose(y, expected, atol=1e-12)
    # 1_{|w| <= 1}, not multiplied by beta (beta = 0.35 in channel 1)
    assert torch.equal(g, upstream * t(1, 0, 1, 0, 1, 1, 1, 1).reshape(2, 1, 2, 2))


def test_learned_scale_sign_forward_and_custom_backward_by_hand() -> None:
    w = t(0.5, -2.0, 0.0, 0.1).reshape(2, 1, 1, 2).requires_grad_(True)
    m = t(-3.0, 2.0).reshape(2, 1, 1, 1).requires_grad_(True)
    dy = t(1.0, -2.0, 0.5, 3.0).reshape(2, 1, 1, 2)
    y = learned_scale_sign(w, m)
    # 0.02 * sign(w) * |m|, sign(0) = +1
    assert torch.allclose(y, t(0.06, -0.06, 0.04, 0.04).reshape(2, 1, 1, 2), atol=1e-15)
    y.backward(dy)
    # dW = dY |M| + 1e-4 (W - Wq)
    dw = t(3 + 1e-4 * 0.44, -6 + 1e-4 * -1.94, 1.0 + 1e-4 * -0.04, 6 + 1e-4 * 0.06)
    # dM = sum(dY W) - 1e-4 sum((W - Wq) 0.02 sign(W)): ch0 4.5 - 1e-4 * 0.0476, ch1 0.3 - 1e-4 * 0.0004
    dm = t(4.5 - 1e-4 * 0.0476, 0.3 - 1e-4 * 0.0004)
    assert torch.allclose(w.grad.flatten(), dw, rtol=0, atol=1e-12)  # type: ignore[union-attr]
    assert torch.allclose(m.grad.flatten(), dm, rtol=0, atol=1e-12)  # type: ignore[union-attr]


def test_learned_scale_constants() -> None:
    assert (LEARNED_SCALE_MULTIPLIER, LEARNED_SCALE_RECON_WEIGHT) == (0.02, 1e-4)


def test_learned_scale_gradient_is_not_clipped() -> None:
    w = t(5.0, -7.0).reshape(1, 1, 1, 2).requires_grad_(True)
    m = t(1.0).reshape(1, 1, 1, 1).requires_grad_(True)
    learned_scale_sign(w, m).sum().backward()
    assert torch.all(w.grad.abs() > 0.99)  # type: ignore[union-attr]


def test_scaled_sign_ste_clip_is_inclusive() -> None:
    w = t(-1.0, 1.0, 0.999, 1.001).view(4, 1, 1, 1)
    _, g = value_and_grad(scaled_sign_ste, w, torch.ones_like(w))
    assert torch.equal(g.flatten(), t(1, 1, 1, 0))


def test_constant_surrogate_slopes_keep_first_order_and_drop_the_slope_derivative() -> None:
    """Inside `constant_surrogate_slopes` the ApproxSign gradient is the same; its create_graph backward is
    differentiable in the output gradient (identically) but no longer in x."""
    from binas.quant.functional import _CONSTANT_SLOPES, constant_surrogate_slopes

    x0 = torch.tensor([-1.5, -0.5, -0.25, 0.0, 0.3, 0.9, 2.0], dtype=torch.float64)
    out = []
    for constant in (False, True):
        x = x0.clone().requires_grad_(True)
        g = torch.linspace(0.5, 2.0, 7, dtype=torch.float64, requires_grad=True)
        if constant:
            with constant_surrogate_slopes():
                y = approx_sign(x)
        else:
            y = approx_sign(x)
        (gx,) = torch.autograd.grad(y, x, g, create_graph=True)
        out.append((gx.detach(), *torch.autograd.grad(gx.sum(), (g, x), allow_unused=True)))
    assert not _CONSTANT_SLOPES.get()
    torch.testing.assert_close(out[1][0], out[0][0], rtol=0, atol=0)  # the same gradient
    torch.testing.assert_close(out[1][1], out[0][1], rtol=0, atol=0)  # the same output-gradient derivative
    assert out[0][2].abs().sum() > 0 and out[1][2] is None  # the slope's x-derivative: native only
