"""The kernel-level Child-Parent loss for retraining a CP-NAS network (spec §4.3, Eqs. 4.17-4.18).

CP-NAS Eq. 4.17 [Rec], with the normalisation fixed here (spec A12):

    L_H = sum_{l,c} MSE(H^l_c, H^l_c_hat) + (lam / 2) * R(sum_s ||f_s - f_bar_{class(s)}||^2)

- H^l_c is the latent full-precision c-th filter of the l-th binary-weight conv (the "Parent" kernel of
  A12: the same network's real weights) and H_hat = beta o sign(H) the kernel the conv uses
  (`QuantConv2d.quantized_weight()`). MSE is the mean over the filter's C_in * k * k elements; the
  per-filter values are summed over filters c and layers l. Real-weight convs contribute nothing.
- f_s is sample s's last feature map (`Network.forward_all(x).features`, the last cell's output),
  flattened; f_bar its class's mean over the batch. R is the `reduction`: `mean` (default) divides the
  sum over samples by the batch size so lam does not depend on it, `sum` keeps the sum as printed.

Eq. 4.18: the retraining loss is L = CE + L_H (`CPLoss`).
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from binas.errors import ConfigError, ShapeError
from binas.quant.layers import quant_convs

Reduction = Literal["mean", "sum"]

#: lam of Eq. 4.17. Not recovered (spec A12/A13) [Inf]: the squared distance of a whole feature map to
#: its class mean grows with the map's size (about 2,000 values per sample for the digits network,
#: 37,000 for DARTS's CIFAR network), so lam is small; sweep it.
CP_LAMBDA = 1e-4


def kernel_reconstruction_mse(model: nn.Module) -> Tensor:
    """First term of Eq. 4.17: sum over binary-weight convs l and filters c of MSE(H^l_c, H_hat^l_c).

    H_hat has H_hat's value (`quantized_weight()`), but its dependence on H is cut: sign(.) is piecewise
    constant, and for the mean-|H| scale the scale's own derivative term vanishes at beta = mean |H_c|, so
    the gradient w.r.t. H is exactly 2 (H - H_hat) / n per filter (with the conv's straight-through
    estimator instead, it would cancel for |H| <= 1). A learned scale still gets the gradient its quantizer
    defines, pulling the binary kernel towards the real one (Fig. 4.5: Parent weights -> MSE <- Child weights).
    """
    terms = []
    for conv in quant_convs(model):
        assert conv.weight_quantizer is not None  # quant_convs returns binary-weight convs only
        h = conv.weight
        h_hat = conv.weight_quantizer(h.detach())
        terms.append((h - h_hat).pow(2).flatten(1).mean(dim=1).sum())
    if not terms:
        ref = next(model.parameters(), None)
        return torch.zeros((), device=None if ref is None else ref.device)
    return torch.stack(terms).sum()


def intraclass_compactness(features: Tensor, labels: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    """sum_s ||f_s - f_bar_{class(s)}||^2 (Eq. 4.17, second term without lam / 2), class means over the batch.

    `features`: (B, ...) feature maps, flattened per sample; `labels`: (B,) class indices. Zero when all
    features of each class are equal (and for classes with one sample in the batch). With `mean` the sum
    is divided by B. The gradient w.r.t. f_s is 2 (f_s - f_bar) (/ B), the same whether or not f_bar is
    treated as a constant, since the deviations from a class mean sum to zero.
    """
    if reduction not in ("mean", "sum"):
        raise ConfigError(f"unknown reduction '{reduction}'; choose mean or sum")
    if labels.dim() != 1 or features.dim() < 2 or features.shape[0] != labels.shape[0]:
        raise ShapeError(
            f"features {tuple(features.shape)} and labels {tuple(labels.shape)} must share the "
            "batch dimension; labels must be (batch,)"
        )
    f = features.flatten(1)
    classes, inverse = labels.unique(return_inverse=True)
    sums = f.new_zeros(len(classes), f.shape[1]).index_add(0, inverse, f)
    counts = torch.bincount(inverse, minlength=len(classes)).to(f.dtype)
    centers = sums / counts[:, None]
    squared = (f - centers[inverse]).pow(2).sum(dim=1)
    return squared.mean() if reduction == "mean" else squared.sum()


def cp_kernel_loss(
    model: nn.Module,
    features: Tensor,
    labels: Tensor,
    *,
    lam: float = CP_LAMBDA,
    reduction: Reduction = "mean",
) -> Tensor:
    """L_H of CP-NAS Eq. 4.17 (both extra terms, no cross-entropy): kernel MSE + (lam / 2) * compactness.

    Args:
        model: the network being retrained; its binary-weight `QuantConv2d` layers give H and H_hat.
        features: the last feature map of each sample, e.g. `Network.forward_all(x).features`.
        labels: (B,) class indices.
        lam: weight of the intraclass term (applied as lam / 2).
        reduction: `mean` (batch mean) or `sum` over samples for the intraclass term.
    """
    if lam < 0:
        raise ConfigError(f"the CP loss weight lam must be >= 0, got {lam}")
    return kernel_reconstruction_mse(model) + (lam / 2) * intraclass_compactness(features, labels, reduction=reduction)


class _LogitsAndFeatures(Protocol):
    logits: Tensor
    features: Tensor


class CPLoss(nn.Module):
    """CP-NAS Eq. 4.18: L = CE(logits, labels) + L_H, from a `NetworkOutput` (anything with `.logits`
    and `.features`). The model is passed to `forward`, not stored, so it is not a submodule of the loss."""

    def __init__(self, lam: float = CP_LAMBDA, reduction: Reduction = "mean") -> None:
        super().__init__()
        if lam < 0:
            raise ConfigError(f"the CP loss weight lam must be >= 0, got {lam}")
        self.lam = lam
        self.reduction: Reduction = reduction

    def forward(self, model: nn.Module, output: _LogitsAndFeatures, labels: Tensor) -> Tensor:
        ce = F.cross_entropy(output.logits, labels)
        return ce + cp_kernel_loss(model, output.features, labels, lam=self.lam, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"lam={self.lam}, reduction={self.reduction}"
