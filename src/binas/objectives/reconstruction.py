"""Weight reconstruction error L_R = Σ_l ||ŵ_l − β_l∘sign(ŵ_l)||² (DCP-NAS Eq. 4.23, after PCNN).

The book prints the sum without saying how it is normalised. Summed over every element of every binary
conv, μ = 0.2 makes L_R a restoring force 0.4·(w − β sign w) on each weight that no distillation gradient
can overcome: in a default digits search no Child weight changed sign (`shared/reviews/method-review.md`
§1.5). The default therefore takes the mean over the elements of each conv and sums over convs ([Inf]):
each layer then pulls with 2μ/n_l per weight, the order of the release's folded-in 1e-4 per weight
(`binary/MFunction_new.py`, `para_loss`) for the release's layer sizes. `sum` keeps the old reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from binas.quant.layers import QuantConv2d, quant_convs

ReconstructionReduction = Literal["mean", "sum"]
RECONSTRUCTION_REDUCTIONS: tuple[str, ...] = ("mean", "sum")


def reconstruction_error(weight: Tensor, quantized: Tensor, reduction: ReconstructionReduction = "sum") -> Tensor:
    """||w − ŵ||² over the elements of one conv (summed, or averaged with `mean`), the binarized target
    ŵ = β∘sign(w) held fixed.

    The target is detached, so ∂L_R/∂w = 2(w − β∘sign(w)) (divided by the element count for `mean`) as
    spec §5.3 adds to Eq. 4.34. Differentiating through the straight-through target instead would cancel
    the gradient inside the clip range (the STE passes 1 there), and β = mean|w| is already the L_R-optimal
    scale for a fixed sign.
    """
    squared = (weight - quantized.detach()).pow(2)
    return squared.mean() if reduction == "mean" else squared.sum()


def model_reconstruction_loss(
    model: nn.Module | Sequence[QuantConv2d], reduction: ReconstructionReduction = "sum"
) -> Tensor:
    """Sum over the binary-weight convs of `model` of `reconstruction_error` (0 for a real model)."""
    convs = list(model) if not isinstance(model, nn.Module) else quant_convs(model)
    if not convs:
        ref = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
        return torch.zeros((), device=ref.device if ref is not None else None)
    return torch.stack([reconstruction_error(c.weight, c.quantized_weight(), reduction) for c in convs]).sum()


def reconstruction_gradient(convs: Sequence[QuantConv2d], reduction: ReconstructionReduction = "sum") -> list[Tensor]:
    """∂L_R/∂w of each conv in closed form (no autograd): 2(w − β∘sign w), divided by n for `mean`."""
    with torch.no_grad():
        grads = [2.0 * (c.weight - c.quantized_weight()) for c in convs]
        return [g / g.numel() for g in grads] if reduction == "mean" else grads
