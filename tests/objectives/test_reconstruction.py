"""L_R (Eq. 4.23): the value, the gradient 2(w − β∘sign w) with a fixed target, zero for real models."""

from __future__ import annotations

import torch
from torch import nn

from binas.objectives.reconstruction import model_reconstruction_loss, reconstruction_error, reconstruction_gradient
from binas.quant.layers import QuantConv2d


def binary_conv(*args: int, **kwargs: int) -> QuantConv2d:
    """A 1-bit x 1-bit conv (ApproxSign activations, mean-|W| weights)."""
    return QuantConv2d(*args, **kwargs, input_quantizer="approx_sign", weight_quantizer="mean_abs")


def test_gradient_is_twice_the_residual_inside_the_clip_range() -> None:
    torch.manual_seed(0)
    conv = binary_conv(3, 4, 3, padding=1)
    with torch.no_grad():
        conv.weight.mul_(0.1)  # all |w| < 1: the STE would pass 1 everywhere
    loss = model_reconstruction_loss(conv)
    loss.backward()
    w = conv.weight.detach()
    beta = w.abs().mean(dim=(1, 2, 3), keepdim=True)
    target = beta * torch.sign(w)
    torch.testing.assert_close(loss, (w - target).pow(2).sum())
    torch.testing.assert_close(conv.weight.grad, 2 * (w - target))
    assert conv.weight.grad.abs().sum() > 0


def test_model_sum_over_convs_and_zero_for_real_models() -> None:
    torch.manual_seed(0)
    convs = [binary_conv(2, 2, 3), binary_conv(2, 3, 1)]
    total = model_reconstruction_loss(convs)
    parts = sum(reconstruction_error(c.weight, c.quantized_weight()) for c in convs)
    torch.testing.assert_close(total, parts)
    assert model_reconstruction_loss(nn.Sequential(nn.Conv2d(2, 2, 3))).item() == 0.0


def test_mean_reduction_divides_each_conv_by_its_element_count() -> None:
    torch.manual_seed(0)
    convs = [binary_conv(2, 2, 3), binary_conv(2, 3, 1)]
    mean = model_reconstruction_loss(convs, "mean")
    expected = sum(reconstruction_error(c.weight, c.quantized_weight()) / c.weight.numel() for c in convs)
    torch.testing.assert_close(mean, expected)


def test_closed_form_gradient_equals_autograd_for_both_reductions() -> None:
    torch.manual_seed(0)
    convs = [binary_conv(2, 2, 3), binary_conv(2, 3, 1)]
    for reduction in ("mean", "sum"):
        for c in convs:
            c.weight.grad = None
        model_reconstruction_loss(convs, reduction).backward()
        for c, g in zip(convs, reconstruction_gradient(convs, reduction)):
            torch.testing.assert_close(c.weight.grad, g)
