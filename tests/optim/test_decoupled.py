"""Decoupled optimization (DCP-NAS Eqs. 4.50-4.53): the rank gate, ψ̃ >= 0, the backtracked step, R(w_m)."""

from __future__ import annotations

import pytest
import torch

from binas.optim.decoupled import DecoupledBacktracking, backtrack, psi_update, rank_gate
from binas.quant.policy import BinarizationPolicy
from binas.space.op_norms import OpNormTable, pooling_norm_per_channel
from binas.space.primitives import PRIMITIVES
from binas.space.supernet import Supernet, SupernetConfig

# Two edges of four ops. Edge 0 ranks (largest first): op2=1, op0=2, op3=3, op1=4.
# Edge 1 has a tie between op0 and op3 (the lower index ranks first): op1=1, op0=2, op3=3, op2=4.
NORMS = torch.tensor([[3.0, 0.5, 9.0, 1.0], [2.0, 7.0, 0.0, 2.0]])


def test_rank_gate_backtracks_the_ops_ranked_below_tau() -> None:
    assert rank_gate(NORMS, 2).tolist() == [[0, 1, 0, 1], [0, 0, 1, 1]]
    assert rank_gate(NORMS, 3).tolist() == [[0, 1, 0, 0], [0, 0, 1, 0]]
    assert rank_gate(NORMS, 0).tolist() == [[1, 1, 1, 1], [1, 1, 1, 1]]
    assert rank_gate(NORMS, 4).sum() == 0  # tau = M: nothing is backtracked


def test_rank_gate_order_and_scope_options() -> None:
    # smallest-first: rank 1 = smallest norm, so the large-norm ops are backtracked.
    assert rank_gate(NORMS, 2, order="smallest-first").tolist() == [[1, 0, 1, 0], [0, 1, 0, 1]]
    # cell scope: the 8 entries are ranked together; the 3 largest (9, 7, 3) are kept.
    assert rank_gate(NORMS, 3, scope="cell").tolist() == [[0, 1, 0, 1], [1, 0, 1, 1]]


def test_backtrack_and_psi_update_formulas() -> None:
    new, prev = torch.tensor([[1.0, 2.0]]), torch.tensor([[4.0, -8.0]])
    psi, mask = torch.tensor([[0.5]]), torch.tensor([[1.0, 0.0]])
    assert backtrack(new, prev, psi, mask, 0.1).tolist()[0] == pytest.approx([1.2, 2.0])
    assert psi_update(torch.tensor([0.1, 0.3]), torch.tensor([2.0, -1.0]), 0.1).tolist() == pytest.approx([0.1, 0.4])


def _quadratic_run(steps: int, **kw) -> tuple[list[torch.Tensor], DecoupledBacktracking]:
    """A few decoupled Adam steps on L = Σ (softmax(α) − target)² with a fixed R table."""
    g = torch.Generator().manual_seed(0)
    alphas = [torch.nn.Parameter(torch.randn(2, 4, generator=g)) for _ in range(2)]
    targets = [torch.softmax(torch.randn(2, 4, generator=g), -1) for _ in range(2)]
    dec = DecoupledBacktracking(2, 4, **kw)
    opt = torch.optim.Adam(alphas, lr=0.1)
    dec.begin_round(alphas)
    for _ in range(steps):
        eff = [dec.effective(i, a) for i, a in enumerate(alphas)]
        loss = sum(((torch.softmax(e, -1) - t) ** 2).sum() for e, t in zip(eff, targets))
        for a, gr in zip(alphas, torch.autograd.grad(loss, eff)):
            a.grad = gr
        dec.step(alphas, eff, opt, [NORMS, NORMS], eta=0.5)
    dec.fold(alphas)
    return [a.detach().clone() for a in alphas], dec


def test_tau_equal_to_m_or_switched_off_is_the_plain_step() -> None:
    plain, _ = _quadratic_run(6, enabled=False)
    gated_off, _ = _quadratic_run(6, tau=4, psi_lr=1.0)
    backtracked, _ = _quadratic_run(6, tau=2, psi_lr=1.0)
    assert all(torch.equal(a, b) for a, b in zip(plain, gated_off))
    assert not all(torch.allclose(a, b) for a, b in zip(plain, backtracked))


def test_psi_stays_nonnegative_and_learns() -> None:
    _, dec = _quadratic_run(6, tau=0, psi_lr=1e4, psi_init=1e-3)
    psi = torch.cat([p.detach().reshape(-1) for p in dec.psi])
    assert (psi >= 0).all()
    assert not torch.allclose(psi, torch.full_like(psi, 1e-3))


def test_effective_alpha_is_differentiable_in_psi_with_the_closed_form_gradient() -> None:
    dec = DecoupledBacktracking(2, 4, tau=2, psi_shape="edge")
    alphas = [torch.nn.Parameter(torch.randn(2, 4)) for _ in range(2)]
    opt = torch.optim.SGD(alphas, lr=0.1)
    dec.begin_round(alphas)
    eff = [dec.effective(i, a) for i, a in enumerate(alphas)]
    for a in alphas:
        a.grad = torch.ones_like(a)
    before = [a.detach().clone() for a in alphas]
    dec.step(alphas, eff, opt, [NORMS, NORMS], eta=0.5)
    # After the step: alpha_eff = alpha_new + eta * psi * alpha_prev * mask, with alpha_prev the old alpha.
    mask = rank_gate(NORMS, 2)
    eff = dec.effective(0, alphas[0])
    assert torch.allclose(eff, alphas[0] + 0.5 * dec.psi[0] * before[0] * mask)
    upstream = torch.randn(2, 4)
    (g_psi,) = torch.autograd.grad(eff, dec.psi[0], grad_outputs=upstream)
    assert torch.allclose(g_psi, 0.5 * (upstream * before[0] * mask).sum(1, keepdim=True))


def test_op_norm_table_follows_eq_4_53() -> None:
    cfg = SupernetConfig(channels=4, layers=3, steps=2, multiplier=2)
    torch.manual_seed(0)
    for policy in (BinarizationPolicy.real(), BinarizationPolicy.released()):
        net = Supernet(cfg, num_classes=3, policy=policy)
        norms = OpNormTable(net)()
        idx = {name: PRIMITIVES.index(name) for name in PRIMITIVES}
        # Normal cell: cell 0 only, C = 4. Reduction cells: cells 1 (C = 8) and 2 (C = 16).
        normal, reduce = norms["normal"], norms["reduce"]
        assert (normal[:, idx["none"]] == 0).all()
        assert normal[:, idx["avg_pool_3x3"]].tolist() == pytest.approx([4 * pooling_norm_per_channel(3)] * 5)
        assert normal[:, idx["max_pool_3x3"]].tolist() == pytest.approx([4 / 9] * 5)
        assert normal[:, idx["skip_connect"]].tolist() == pytest.approx([4.0] * 5)
        assert float(reduce[4, idx["skip_connect"]]) == pytest.approx(8.0 + 16.0)  # identity only on edge 2 -> 3
        op = net.cells[0].edges[0].ops[idx["sep_conv_3x3"]]
        with torch.no_grad():
            convs = [c for c in op.modules() if hasattr(c, "quantized_weight")]
            expected = sum(float(c.quantized_weight().pow(2).sum()) for c in convs)
            assert float(normal[0, idx["sep_conv_3x3"]]) == pytest.approx(expected, rel=1e-5)
            if not policy.is_real:  # the Child uses beta * sign(w): ||.||^2 = beta^2 * numel, not ||w||^2
                assert float(convs[0].quantized_weight().pow(2).sum()) != pytest.approx(
                    float(convs[0].weight.pow(2).sum())
                )
