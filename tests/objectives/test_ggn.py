"""Curvature products w.r.t. alpha: the GGN product equals an explicit Jᵀ H_z J, the exact HVP equals
finite differences of gradients, the rank-1 product is g gᵀ v (float64, train-mode BatchNorm)."""

from __future__ import annotations

import pytest
import torch

from binas.objectives.distill import soft_cross_entropy
from binas.objectives.ggn import (
    LogitLinearization,
    ggn_vector_product,
    gradient_outer_product,
    hessian_vector_product,
    softmax_ce_logit_gradient,
    softmax_ce_logit_hessian_product,
)
from binas.quant.policy import BinarizationPolicy
from binas.space.supernet import Supernet, SupernetConfig

# Two intermediate nodes (5 edges), 3 cells (one normal, two reduction): P = 2 * 5 * 8 = 80 alphas.
TINY = SupernetConfig(channels=4, layers=3, steps=2, multiplier=2)
CLASSES, BATCH = 3, 4
FD_STEP = 1e-6  # central differences in float64: error O(h^2) far below the tolerance


def _net(binary: bool) -> Supernet:
    torch.manual_seed(0)
    policy = BinarizationPolicy.strict() if binary else BinarizationPolicy.real()
    return Supernet(TINY, num_classes=CLASSES, policy=policy).double().train()


def _alphas(net: Supernet, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (net.num_edges, net.num_ops)
    return tuple(torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(True) for _ in range(2))


def _batch(seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(BATCH, 3, 8, 8, generator=g, dtype=torch.float64),
        torch.randn(BATCH, CLASSES, generator=g, dtype=torch.float64),
    )


def _logits(net: Supernet, alphas, x) -> torch.Tensor:
    return net(x, torch.softmax(alphas[0], -1), torch.softmax(alphas[1], -1))


def _flat(ts) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in ts])


def _explicit_ggn(logits: torch.Tensor, alphas) -> torch.Tensor:
    """Jᵀ H_z J from the full Jacobian of the logits (one backward per logit) and the block-diagonal H_z."""
    rows = []
    for b in range(logits.shape[0]):
        for n in range(logits.shape[1]):
            rows.append(_flat(torch.autograd.grad(logits[b, n], alphas, retain_graph=True)))
    J = torch.stack(rows)  # (B*N, P)
    p = torch.softmax(logits.detach(), -1)
    H = torch.block_diag(
        *[(torch.diag(p[b]) - torch.outer(p[b], p[b])) / logits.shape[0] for b in range(logits.shape[0])]
    )
    return J.T @ H @ J


@pytest.mark.parametrize("binary", [False, True], ids=["real", "binary"])
def test_ggn_product_equals_explicit_jt_hz_j(binary: bool) -> None:
    net, (x, _) = _net(binary), _batch()
    alphas = _alphas(net)
    logits = _logits(net, alphas, x)
    G = _explicit_ggn(logits, alphas)
    v = tuple(torch.randn_like(a) for a in alphas)
    Gv = ggn_vector_product(logits, alphas, v, retain_graph=True)
    assert torch.allclose(_flat(Gv), G @ _flat(v), rtol=1e-9, atol=1e-12)
    assert float(_flat(v) @ G @ _flat(v)) >= 0.0  # the GGN is positive semi-definite
    assert not torch.allclose(_flat(Gv), torch.zeros(1, dtype=torch.float64))


def test_linearization_gradient_is_the_loss_gradient_and_its_product_the_ggn() -> None:
    net, (x, teacher) = _net(False), _batch()
    alphas = _alphas(net)
    logits = _logits(net, alphas, x)
    target = torch.softmax(teacher, -1)
    expected = torch.autograd.grad(soft_cross_entropy(logits, teacher), alphas, retain_graph=True)
    G = _explicit_ggn(logits, alphas)
    lin = LogitLinearization(logits, alphas, softmax_ce_logit_gradient(logits, target))
    assert torch.allclose(_flat(lin.gradient), _flat(expected), rtol=1e-10, atol=1e-14)
    v = tuple(torch.randn_like(a) for a in alphas)
    assert torch.allclose(_flat(lin.ggn_product(v)), G @ _flat(v), rtol=1e-9, atol=1e-12)


def test_logit_hessian_product_is_the_softmax_cross_entropy_hessian() -> None:
    z = torch.randn(BATCH, CLASSES, dtype=torch.float64, requires_grad=True)
    t = torch.softmax(torch.randn(BATCH, CLASSES, dtype=torch.float64), -1)
    v = torch.randn(BATCH, CLASSES, dtype=torch.float64)
    loss = -(t * torch.log_softmax(z, -1)).sum(-1).mean()
    (g,) = torch.autograd.grad(loss, z, create_graph=True)
    (hv,) = torch.autograd.grad(g, z, grad_outputs=v)
    assert torch.allclose(softmax_ce_logit_hessian_product(z, v), hv, atol=1e-14)
    assert torch.allclose(softmax_ce_logit_gradient(z, t), g.detach(), atol=1e-14)


def _loss_grad(net: Supernet, alphas, x, teacher) -> torch.Tensor:
    return _flat(torch.autograd.grad(soft_cross_entropy(_logits(net, alphas, x), teacher), alphas))


def test_exact_hvp_matches_finite_differences_of_gradients() -> None:
    net, (x, teacher) = _net(False), _batch()
    alphas = _alphas(net)
    v = tuple(torch.randn_like(a) for a in alphas)
    g = torch.autograd.grad(soft_cross_entropy(_logits(net, alphas, x), teacher), alphas, create_graph=True)
    hv = _flat(hessian_vector_product(g, alphas, v))
    with torch.no_grad():
        plus = tuple((a + FD_STEP * d).requires_grad_(True) for a, d in zip(alphas, v))
        minus = tuple((a - FD_STEP * d).requires_grad_(True) for a, d in zip(alphas, v))
    fd = (_loss_grad(net, plus, x, teacher) - _loss_grad(net, minus, x, teacher)) / (2 * FD_STEP)
    assert torch.allclose(hv, fd, rtol=1e-5, atol=1e-8)


def test_rank1_product_is_the_gradient_outer_product() -> None:
    g = (torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64))
    v = (torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64))
    expected = torch.outer(_flat(g), _flat(g)) @ _flat(v)
    assert torch.allclose(_flat(gradient_outer_product(g, v)), expected, atol=1e-12)


@pytest.mark.parametrize("binary", [False, True], ids=["real", "binary"])
def test_empirical_fisher_product_equals_the_explicit_per_sample_gradient_covariance(binary: bool) -> None:
    """(1/B) Σ_b g_b g_bᵀ v with g_b = ∇_α ℓ_b formed one sample at a time (train-mode BN: through the batch)."""
    net, (x, teacher) = _net(binary), _batch()
    alphas = _alphas(net)
    logits = _logits(net, alphas, x)
    target = torch.softmax(teacher, -1)
    per_sample = [
        _flat(torch.autograd.grad(soft_cross_entropy(logits[b : b + 1], teacher[b : b + 1]), alphas, retain_graph=True))
        for b in range(BATCH)
    ]
    F = sum(torch.outer(g, g) for g in per_sample) / BATCH
    v = tuple(torch.randn_like(a) for a in alphas)
    lin = LogitLinearization(logits, alphas, softmax_ce_logit_gradient(logits, target))
    Fv = lin.empirical_fisher_product(v, retain_graph=True)
    assert torch.allclose(_flat(Fv), F @ _flat(v), rtol=1e-9, atol=1e-12)
    Gv = lin.ggn_product(v)  # a different matrix: the empirical Fisher uses the observed targets
    assert not torch.allclose(_flat(Fv), _flat(Gv), rtol=1e-3)
