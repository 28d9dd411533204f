"""Curvature-vector products with respect to the architecture parameters, for DCP-NAS tangent propagation.

DCP-NAS needs `H v` with `H = ∇²_α ℓ_C` the Hessian of the Child loss w.r.t. its architecture (Eq. 4.33).
Four products, selectable (spec A4):

* `ggn`: the Generalized Gauss-Newton matrix `G = Jᵀ H_z J` (Eqs. 4.36-4.41: for a softmax
  cross-entropy it equals the Fisher), with `J = ∂z/∂α` (z = logits) and `H_z` the Hessian of the
  batch-mean (soft) cross-entropy w.r.t. the logits. `J v` comes from the double-vjp trick, `Jᵀ(·)` from
  one more vjp (implementation-notes §1). This needs no per-sample gradients, so BatchNorm stays in
  train mode with its batch statistics, and it costs a few batch-gradient passes, not B per-sample
  ones. The forward should run under `binas.objectives.double_backward.fast_double_backward` with
  `output_gradients_only=True`, which makes the `J v` pass about 8x faster on the CPU (PyTorch's double
  backward of grouped convs and BatchNorm is slow there).
* `empirical-fisher`: `(1/B) Σ_b g_b g_bᵀ` from the per-sample gradients `g_b = J_bᵀ (p̂_b − t_b)` of the
  Child loss (spec A4's reading of Eq. 4.36 with the observed targets). `g_bᵀ v = (p̂_b − t_b)·(J v)_b`, so
  the same linearisation gives it without per-sample backward passes, in train-mode BatchNorm (`J_b`:
  sample b's logits through the batch's forward, batch statistics included).
* `ggn-rank1`: the batch-gradient outer product `g (gᵀ v)` (spec §5.4 option 1, cheapest variant).
* `exact`: the Hessian-vector product by double backward (the ablation of Table 4.3, "GGN ✗"); its
  forward may run under `fast_double_backward` with exact BatchNorm (2x faster convs' double backward).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def _materialize(grads: Sequence[Tensor | None], like: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """Replace the `None` of inputs that the output does not depend on by zeros."""
    return tuple(torch.zeros_like(x) if g is None else g for g, x in zip(grads, like))


def softmax_ce_logit_gradient(logits: Tensor, target_probs: Tensor) -> Tensor:
    """∇_z of the batch-mean cross-entropy against a target distribution: (softmax(z) − t) / B."""
    return (torch.softmax(logits.detach(), dim=-1) - target_probs.detach()) / logits.shape[0]


def softmax_ce_logit_hessian_product(logits: Tensor, vector: Tensor) -> Tensor:
    """`H_z v` for the batch-mean cross-entropy: per sample `(diag(p) − p pᵀ) v_b / B`, p = softmax(z_b).

    The same for hard labels and for soft targets summing to one (implementation-notes §1), so it serves
    both the Parent's L_NAS (Eq. 4.21) and the Child's −G (Eq. 4.26 [Rec]).
    """
    p = torch.softmax(logits.detach(), dim=-1)
    return (p * vector - p * (p * vector).sum(dim=-1, keepdim=True)) / logits.shape[0]


class LogitLinearization:
    """The map α ↦ z(α) linearised at the current point, through the graph of one forward pass.

    Built from the logits, the architecture tensors they were computed from, and the loss gradient
    w.r.t. the logits `∂ℓ/∂z`. `gradient` is `Jᵀ ∂ℓ/∂z = ∇_α ℓ`; it is computed with `create_graph` from a
    leaf `u` holding `∂ℓ/∂z`, so that the same graph (linear in `u`) also yields `J v = ∂(gradient·v)/∂u`
    without a second gradient pass: three backward passes in all for the gradient and one GGN product.
    """

    def __init__(self, logits: Tensor, inputs: Sequence[Tensor], logit_grad: Tensor) -> None:
        self.logits = logits
        self.inputs = tuple(inputs)
        self._u = logit_grad.detach().clone().requires_grad_(True)
        vjp = torch.autograd.grad(logits, self.inputs, grad_outputs=self._u, create_graph=True, allow_unused=True)
        self._vjp = _materialize(vjp, self.inputs)
        self.gradient = tuple(g.detach() for g in self._vjp)

    def jvp(self, vector: Sequence[Tensor]) -> Tensor:
        """`J v`, shaped like the logits (the double-vjp trick)."""
        pairs = [(g, v) for g, v in zip(self._vjp, vector) if g.requires_grad]
        if not pairs:
            return torch.zeros_like(self.logits)
        (jv,) = torch.autograd.grad(
            [g for g, _ in pairs], self._u, grad_outputs=[v for _, v in pairs], retain_graph=True, allow_unused=True
        )
        return torch.zeros_like(self.logits) if jv is None else jv

    def vjp(self, cotangent: Tensor, *, retain_graph: bool = False) -> tuple[Tensor, ...]:
        """`Jᵀ c` for a cotangent `c` shaped like the logits."""
        grads = torch.autograd.grad(
            self.logits, self.inputs, grad_outputs=cotangent, retain_graph=retain_graph, allow_unused=True
        )
        return _materialize(grads, self.inputs)

    def empirical_fisher_product(self, vector: Sequence[Tensor], *, retain_graph: bool = False) -> tuple[Tensor, ...]:
        """`(1/B) Σ_b g_b (g_bᵀ v)` with `g_b = J_bᵀ r_b`, `r_b = B ∂ℓ/∂z_b` the per-sample loss gradient
        w.r.t. the logits (for a batch-mean loss ℓ = (1/B) Σ ℓ_b; softmax(z_b) − t_b for a cross-entropy)."""
        r = self._u.detach() * self._u.shape[0]
        coefficient = (r * self.jvp(vector)).sum(dim=-1, keepdim=True)  # g_bᵀ v per sample
        return self.vjp(r * coefficient / r.shape[0], retain_graph=retain_graph)

    def ggn_product(self, vector: Sequence[Tensor], *, retain_graph: bool = False) -> tuple[Tensor, ...]:
        """`Jᵀ H_z J v` for the softmax cross-entropy (DCP-NAS Eqs. 4.36-4.41, GGN = Fisher)."""
        return self.vjp(softmax_ce_logit_hessian_product(self.logits, self.jvp(vector)), retain_graph=retain_graph)


def ggn_vector_product(
    logits: Tensor, inputs: Sequence[Tensor], vector: Sequence[Tensor], *, retain_graph: bool = False
) -> tuple[Tensor, ...]:
    """`G v = Jᵀ H_z J v` of the batch-mean softmax cross-entropy at `logits(inputs)` (any targets)."""
    lin = LogitLinearization(logits, inputs, torch.zeros_like(logits))
    return lin.ggn_product(vector, retain_graph=retain_graph)


def gradient_outer_product(gradient: Sequence[Tensor], vector: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """Rank-1 curvature `g (gᵀ v)` from the batch gradient (spec §5.4, the cheapest Fisher variant)."""
    dot = sum((g * v).sum() for g, v in zip(gradient, vector))
    return tuple(g * dot for g in gradient)


def hessian_vector_product(
    gradient_with_graph: Sequence[Tensor],
    inputs: Sequence[Tensor],
    vector: Sequence[Tensor],
    *,
    retain_graph: bool = False,
) -> tuple[Tensor, ...]:
    """Exact `∇²ℓ v = ∂(∇ℓ · v)/∂α` by double backward; the gradient must come from `create_graph=True`."""
    pairs = [(g, v) for g, v in zip(gradient_with_graph, vector) if g.requires_grad]
    if not pairs:
        return tuple(torch.zeros_like(x) for x in inputs)
    grads = torch.autograd.grad(
        [g for g, _ in pairs],
        tuple(inputs),
        grad_outputs=[v for _, v in pairs],
        retain_graph=retain_graph,
        allow_unused=True,
    )
    return _materialize(grads, inputs)
