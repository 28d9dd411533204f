"""Weight reconstruction error L_R = ||w - beta o sign(w)||^2 (DCP-NAS Eq. 4.23, after PCNN)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from binas.quant.layers import QuantConv2d, quant_convs


def reconstruction_error(weight: Tensor, quantized: Tensor) -> Tensor:
    """||w - w_hat||^2 summed over all elements, with w_hat = beta * sign(w) as the conv uses it.

    The gradient w.r.t. w is 2 (w - w_hat) (w_hat's own straight-through gradient aside); the scale
    gradient flows when beta is learned.
    """
    return (weight - quantized).pow(2).sum()


def model_reconstruction_loss(model: nn.Module | list[QuantConv2d]) -> Tensor:
    """Sum of `reconstruction_error` over every binary-weight conv of `model` (0 for a real model)."""
    convs = model if isinstance(model, list) else quant_convs(model)
    if not convs:
        ref = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
        return torch.zeros((), device=ref.device if ref is not None else None)
    return torch.stack([reconstruction_error(c.weight, c.quantized_weight()) for c in convs]).sum()
