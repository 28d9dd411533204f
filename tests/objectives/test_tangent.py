"""Tangent propagation: closed-form ∂D/∂g_C and ∂D/∂α̂ match autograd for each distance; λ = 0 is plain KD."""

from __future__ import annotations

import pytest
import torch

from binas.objectives.distill import soft_cross_entropy
from binas.objectives.tangent import (
    DISTANCES,
    HESSIANS,
    flatten,
    tangent_arch_gradient,
    tangent_distance,
    tangent_distance_grad,
    unflatten,
)
from binas.space.supernet import Supernet, SupernetConfig

TINY = SupernetConfig(channels=4, layers=3, steps=2, multiplier=2)
CLASSES, BATCH = 3, 4
LAM = 0.7  # large enough that the correction is far above rounding


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    net = Supernet(TINY, num_classes=CLASSES).double().train()
    g = torch.Generator().manual_seed(seed + 1)
    alphas = tuple(
        torch.randn(net.num_edges, net.num_ops, generator=g, dtype=torch.float64).requires_grad_(True) for _ in range(2)
    )
    x = torch.randn(BATCH, 3, 8, 8, generator=g, dtype=torch.float64)
    teacher = torch.randn(BATCH, CLASSES, generator=g, dtype=torch.float64)
    g_parent = tuple(0.1 * torch.randn(net.num_edges, net.num_ops, generator=g, dtype=torch.float64) for _ in range(2))
    return net, alphas, x, teacher, g_parent


def _logits(net, alphas, x):
    return net(x, torch.softmax(alphas[0], -1), torch.softmax(alphas[1], -1))


@pytest.mark.parametrize("kind", DISTANCES)
def test_closed_form_distance_gradient_matches_autograd(kind: str) -> None:
    g = torch.Generator().manual_seed(3)
    gc = torch.randn(40, generator=g, dtype=torch.float64, requires_grad=True)
    gp = torch.randn(40, generator=g, dtype=torch.float64)
    (auto,) = torch.autograd.grad(tangent_distance(gc, gp, kind), gc)
    assert torch.allclose(tangent_distance_grad(gc.detach(), gp, kind), auto, atol=1e-12)


def test_distances_have_their_textbook_values() -> None:
    gc, gp = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    assert float(tangent_distance(gc, gp, "frobenius")) == pytest.approx(5.0)
    assert float(tangent_distance(gc, gp, "l1")) == pytest.approx(3.0)
    assert float(tangent_distance(gc, gp, "cosine")) == pytest.approx(1.0)
    assert float(tangent_distance(gp, 3 * gp, "cosine")) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("kind", DISTANCES)
def test_tangent_gradient_equals_autograd_of_the_dcp_objective(kind: str) -> None:
    """With the exact Hessian, g_C + λ H ∂D/∂g_C is the autograd gradient of ℓ_C + λ D(∇ℓ_C, g_P) (Eq. 4.32)."""
    net, alphas, x, teacher, g_parent = _setup()
    loss = soft_cross_entropy(_logits(net, alphas, x), teacher)
    g_child = torch.autograd.grad(loss, alphas, create_graph=True)
    objective = loss + LAM * tangent_distance(flatten(g_child), flatten(g_parent), kind)
    expected = flatten(torch.autograd.grad(objective, alphas))
    step = tangent_arch_gradient(
        _logits(net, alphas, x), teacher, alphas, g_parent, lam=LAM, hessian="exact", distance=kind
    )
    assert torch.allclose(flatten(step.gradient), expected, rtol=1e-8, atol=1e-12)
    assert step.correction_norm > 1e-6 * float(flatten(step.child_gradient).norm())
    assert step.distance == pytest.approx(
        float(tangent_distance(flatten(step.child_gradient), flatten(g_parent), kind))
    )


def test_lambda_zero_is_the_plain_kd_gradient() -> None:
    net, alphas, x, teacher, g_parent = _setup()
    expected = flatten(torch.autograd.grad(soft_cross_entropy(_logits(net, alphas, x), teacher), alphas))
    for hessian in HESSIANS:
        step = tangent_arch_gradient(_logits(net, alphas, x), teacher, alphas, g_parent, lam=0.0, hessian=hessian)
        assert torch.allclose(flatten(step.gradient), expected, rtol=1e-12, atol=1e-15)
        assert step.correction_norm == 0.0


def test_frobenius_correction_is_two_lambda_h_times_the_gap() -> None:
    """Eq. 4.33: g_C + 2λ H (g_C − g_P), here with the GGN as H."""
    from binas.objectives.ggn import ggn_vector_product

    net, alphas, x, teacher, g_parent = _setup()
    step = tangent_arch_gradient(_logits(net, alphas, x), teacher, alphas, g_parent, lam=LAM, hessian="ggn")
    gap = unflatten(flatten(step.child_gradient) - flatten(g_parent), alphas)
    hv = ggn_vector_product(_logits(net, alphas, x), alphas, gap)
    expected = flatten(step.child_gradient) + 2 * LAM * flatten(hv)
    assert torch.allclose(flatten(step.gradient), expected, rtol=1e-9, atol=1e-13)


def test_the_three_hessians_give_different_corrections() -> None:
    net, alphas, x, teacher, g_parent = _setup()
    grads = {
        h: flatten(
            tangent_arch_gradient(_logits(net, alphas, x), teacher, alphas, g_parent, lam=LAM, hessian=h).gradient
        )
        for h in HESSIANS
    }
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert not torch.allclose(grads["ggn"], grads["exact"])
    assert not torch.allclose(grads["ggn"], grads["ggn-rank1"])
