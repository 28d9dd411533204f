"""DCP-NAS tangent propagation: the Child's architecture gradient pulled toward the Parent's.

With `g_C = ∇_α̂ ℓ_C` (ℓ_C = −G, the Child's soft cross-entropy against the detached Parent) and
`g_P = ∇_α ℓ_P` (the Parent's L_NAS, Eq. 4.21), the Child minimises `ℓ_C + λ D(g_C, g_P)` w.r.t. α̂
(Eq. 4.32). By the chain rule `∂D/∂α̂ = H_C ∂D/∂g_C` (H_C = ∂g_C/∂α̂, symmetric), so the α̂-gradient is

    g_C + λ H_C ∂D/∂g_C,   which for the squared Frobenius D is g_C + 2λ H_C (g_C − g_P)  (Eq. 4.33)

in loss space (spec §5.3). `D` is selectable (Table 4.4): squared Frobenius (default, spec A1), L1, or
cosine distance `1 − cos`; each has its closed-form `∂D/∂g_C` here. H_C v comes from
`binas.objectives.ggn` (`ggn` by default, `empirical-fisher`, `ggn-rank1`, or `exact`; spec A4).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from binas.objectives.distill import soft_cross_entropy
from binas.objectives.double_backward import fast_double_backward
from binas.objectives.ggn import (
    LogitLinearization,
    gradient_outer_product,
    hessian_vector_product,
    softmax_ce_logit_gradient,
)

DistanceKind = Literal["frobenius", "l1", "cosine"]
HessianKind = Literal["ggn", "empirical-fisher", "ggn-rank1", "exact"]
DISTANCES: tuple[str, ...] = ("frobenius", "l1", "cosine")
HESSIANS: tuple[str, ...] = ("ggn", "empirical-fisher", "ggn-rank1", "exact")

#: Guards the norms in the cosine distance against a zero gradient (float32-safe, far below any real norm).
COSINE_EPS = 1e-12


def flatten(tensors: Sequence[Tensor]) -> Tensor:
    """One vector from the per-cell-type gradients (normal, reduce): D is taken over all of α (224 numbers)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: Tensor, like: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """Split a flat vector back into tensors shaped like `like`."""
    out, start = [], 0
    for t in like:
        out.append(vector[start : start + t.numel()].view_as(t))
        start += t.numel()
    return tuple(out)


def tangent_distance(g_child: Tensor, g_parent: Tensor, kind: DistanceKind = "frobenius") -> Tensor:
    """D(g_C, g_P) (Eq. 4.31 [Rec]; Table 4.4): `‖g_C − g_P‖²_F`, `‖g_C − g_P‖₁` or `1 − cos(g_C, g_P)`."""
    diff = g_child - g_parent
    if kind == "frobenius":
        return diff.pow(2).sum()
    if kind == "l1":
        return diff.abs().sum()
    if kind == "cosine":
        norms = g_child.norm().clamp_min(COSINE_EPS) * g_parent.norm().clamp_min(COSINE_EPS)
        return 1.0 - (g_child * g_parent).sum() / norms
    raise ValueError(f"unknown distance '{kind}'; choose one of: {', '.join(DISTANCES)}")


def tangent_distance_grad(g_child: Tensor, g_parent: Tensor, kind: DistanceKind = "frobenius") -> Tensor:
    """Closed-form `∂D/∂g_C` of `tangent_distance` (the vector H_C multiplies in Eq. 4.33).

    Frobenius: `2 (g_C − g_P)`; L1: `sign(g_C − g_P)` (subgradient 0 at ties); cosine:
    `−(ĝ_P − cos · ĝ_C) / ‖g_C‖` with ĝ the unit vectors.
    """
    diff = g_child - g_parent
    if kind == "frobenius":
        return 2.0 * diff
    if kind == "l1":
        return torch.sign(diff)
    if kind == "cosine":
        nc, np_ = g_child.norm().clamp_min(COSINE_EPS), g_parent.norm().clamp_min(COSINE_EPS)
        unit_c, unit_p = g_child / nc, g_parent / np_
        cos = (unit_c * unit_p).sum()
        return -(unit_p - cos * unit_c) / nc
    raise ValueError(f"unknown distance '{kind}'; choose one of: {', '.join(DISTANCES)}")


def child_forward_context(net: nn.Module, *, lam: float, hessian: HessianKind) -> AbstractContextManager[None]:
    """Where the Child's forward for `tangent_arch_gradient` runs when a curvature product follows:
    `fast_double_backward(net)`, with BatchNorm statistics and sign slopes held constant for the
    Gauss-Newton products (`ggn`, `empirical-fisher` differentiate only `J v`), exact for `exact`; plain
    autograd when no double backward follows (λ = 0, `ggn-rank1`)."""
    if lam == 0.0 or hessian == "ggn-rank1":
        return nullcontext()
    return fast_double_backward(net, output_gradients_only=hessian in ("ggn", "empirical-fisher"))


@dataclass
class TangentStep:
    """The Child's architecture gradient and what the metrics report about it.

    Attributes:
        gradient: `g_C + λ H_C ∂D/∂g_C` per input tensor (what the α̂ optimizer steps on).
        child_gradient: `g_C` per input tensor.
        loss: ℓ_C on the batch (soft cross-entropy).
        distance: D(g_C, g_P).
        gap_norm: ‖g_C − g_P‖.
        correction_norm: ‖λ H_C ∂D/∂g_C‖ (0 when λ = 0).
    """

    gradient: tuple[Tensor, ...]
    child_gradient: tuple[Tensor, ...]
    loss: Tensor
    distance: float
    gap_norm: float
    correction_norm: float


def tangent_arch_gradient(
    logits: Tensor,
    teacher_logits: Tensor,
    inputs: Sequence[Tensor],
    parent_gradient: Sequence[Tensor],
    *,
    lam: float,
    hessian: HessianKind = "ggn",
    distance: DistanceKind = "frobenius",
) -> TangentStep:
    """The DCP-NAS α̂-gradient (Eq. 4.33 in loss space) of ℓ_C = soft-CE(logits, softmax(teacher_logits)).

    Args:
        logits: Child logits computed from `inputs` (the graph is consumed), in the forward context
            `child_forward_context` gives.
        teacher_logits: Parent logits on the same batch (detached here).
        inputs: the architecture tensors the Child forward used (normal, reduce).
        parent_gradient: the tangent direction g_P, shaped like `inputs`.
        lam: λ; 0 skips the curvature product and returns the plain KD gradient.
        hessian: `ggn` (Jᵀ H_z J), `empirical-fisher` ((1/B) Σ g_b g_bᵀ), `ggn-rank1` (g_C g_Cᵀ) or
            `exact` (double backward).
        distance: the D of Table 4.4.
    """
    inputs = tuple(inputs)
    loss = soft_cross_entropy(logits, teacher_logits)
    lin: LogitLinearization | None = None
    g_with_graph: tuple[Tensor, ...] = ()
    if lam != 0.0 and hessian in ("ggn", "empirical-fisher"):
        target = torch.softmax(teacher_logits.detach(), dim=-1)
        lin = LogitLinearization(logits, inputs, softmax_ce_logit_gradient(logits, target))
        g_child = lin.gradient
    elif lam != 0.0 and hessian == "exact":
        g_with_graph = torch.autograd.grad(loss, inputs, create_graph=True)
        g_child = tuple(g.detach() for g in g_with_graph)
    else:
        g_child = tuple(g.detach() for g in torch.autograd.grad(loss, inputs))
    gc, gp = flatten(g_child), flatten(parent_gradient).detach()
    with torch.no_grad():
        dist = float(tangent_distance(gc, gp, distance))
        gap = float((gc - gp).norm())
    if lam == 0.0:
        return TangentStep(g_child, g_child, loss.detach(), dist, gap, 0.0)
    direction = unflatten(tangent_distance_grad(gc, gp, distance), inputs)
    if lin is not None and hessian == "empirical-fisher":
        hv = lin.empirical_fisher_product(direction)
    elif lin is not None:
        hv = lin.ggn_product(direction)
    elif hessian == "exact":
        hv = hessian_vector_product(g_with_graph, inputs, direction)
    elif hessian == "ggn-rank1":
        hv = gradient_outer_product(g_child, direction)
    else:
        raise ValueError(f"unknown hessian '{hessian}'; choose one of: {', '.join(HESSIANS)}")
    correction = tuple(lam * h for h in hv)
    total = tuple(g + c for g, c in zip(g_child, correction))
    return TangentStep(total, g_child, loss.detach(), dist, gap, float(flatten(correction).norm()))
