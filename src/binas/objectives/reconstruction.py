"""Weight reconstruction error L_R = Σ ||ŵ − β∘sign(ŵ)||² (DCP-NAS Eq. 4.23, after PCNN)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from binas.quant.layers import QuantConv2d, quant_convs


def reconstruction_error(weight: Tensor, quantized: Tensor) -> Tensor:
    """||w − ŵ||² summed over all elements, with the binarized target ŵ = β∘sign(w) held fixed.

    The target is detached, so ∂L_R/∂w = 2(w − β∘sign(w)) as spec §5.3 adds to Eq. 4.34. Differentiating
    through the straight-through target instead would cancel the gradient inside the clip range (the STE
    passes 1 there), and β = mean|w| is already the L_R-optimal scale for a fixed sign.
    """
    return (weight - quantized.detach()).pow(2).sum()


def model_reconstruction_loss(model: nn.Module | Sequence[QuantConv2d]) -> Tensor:
    """Sum of `reconstruction_error` over every binary-weight conv of `model` (0 for a real model)."""
    convs = list(model) if not isinstance(model, nn.Module) else quant_convs(model)
    if not convs:
        ref = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
        return torch.zeros((), device=ref.device if ref is not None else None)
    return torch.stack([reconstruction_error(c.weight, c.quantized_weight()) for c in convs]).sum()
