"""`fast_double_backward`: the same forward, gradients, J v and exact HVP as plain autograd (float64),
complete derivatives for convs, linearized BatchNorm exact in the output gradient only, parameters restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from binas.objectives.double_backward import _batch_norm, _conv2d, fast_double_backward
from binas.objectives.ggn import LogitLinearization, softmax_ce_logit_gradient
from binas.objectives.tangent import child_forward_context
from binas.quant.policy import BinarizationPolicy
from binas.space.supernet import Supernet, SupernetConfig


def _net() -> nn.Module:
    """Every conv kind the search space uses (grouped, dilated, strided, 1x1) plus a biased conv and BNs."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8, bias=False),
        nn.BatchNorm2d(8, affine=False),
        nn.Conv2d(8, 8, 1, stride=2, bias=False),
        nn.BatchNorm2d(8),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 5),
    ).double()
    with torch.no_grad():  # non-trivial affine BN parameters
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net.train()


def _inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 4, 8, 8, generator=g, dtype=torch.float64)
    a = torch.randn(4, generator=g, dtype=torch.float64).requires_grad_(True)
    return x, a


def _jvp_and_state(linearized: bool, memory_format: torch.memory_format) -> tuple[torch.Tensor, ...]:
    net = _net().to(memory_format=memory_format)
    x, a = _inputs()
    x = x.contiguous(memory_format=memory_format)
    if linearized:
        with fast_double_backward(net, output_gradients_only=True):
            z = net(x * a.view(1, -1, 1, 1))
    else:
        z = net(x * a.view(1, -1, 1, 1))
    lin = LogitLinearization(z, (a,), softmax_ce_logit_gradient(z, torch.full_like(z, 0.2)))
    v = torch.randn(4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    jv = lin.jvp((v,))
    (jt,) = lin.vjp(torch.ones_like(z))
    return z.detach(), lin.gradient[0], jv, jt, net[1].running_mean, net[1].running_var, net[1].num_batches_tracked


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_forward_gradient_jvp_and_running_stats_match_plain_autograd(memory_format):
    plain, fast = _jvp_and_state(False, memory_format), _jvp_and_state(True, memory_format)
    for p, f in zip(plain, fast):
        torch.testing.assert_close(f, p, rtol=1e-10, atol=1e-12)
    assert int(fast[-1]) == 1


def test_weight_gradients_match_outside_a_frozen_module():
    """Without a module to freeze, every parameter still gets PyTorch's gradient (affine BN included)."""
    x, a = _inputs()
    grads = []
    for linearized in (False, True):
        net = _net()
        if linearized:
            with fast_double_backward(output_gradients_only=True):
                loss = net(x * a.view(1, -1, 1, 1)).pow(2).sum()
        else:
            loss = net(x * a.view(1, -1, 1, 1)).pow(2).sum()
        grads.append(torch.autograd.grad(loss, [a, *net.parameters()]))
    for p, f in zip(*grads):
        torch.testing.assert_close(f, p, rtol=1e-10, atol=1e-12)


def test_conv_second_derivatives_are_complete():
    """The conv Functions are closed under differentiation: gradgradcheck in x, weight and the bias."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    for groups, dilation, stride in ((1, 1, 1), (4, 2, 1), (2, 1, 2)):
        w = torch.randn(4, 4 // groups, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
        b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)

        def f(x, w, b, groups=groups, dilation=dilation, stride=stride):
            return torch.tanh(_conv2d(x, w, b, stride, dilation, dilation, groups))

        assert torch.autograd.gradcheck(f, (x, w, b))
        assert torch.autograd.gradgradcheck(f, (x, w, b))


def test_batch_norm_backward_is_exact_in_the_output_gradient_only():
    """The BN input gradient's derivative in gy is exact; its x-dependence (batch statistics) is held
    constant, which is what separates it from the exact Hessian (documented trade)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    gy = torch.randn(5, 3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    ggx = torch.randn(5, 3, 4, 4, generator=g, dtype=torch.float64)
    out = []
    for fn in (torch.nn.functional.batch_norm, _batch_norm):
        y = fn(x, None, None, None, None, True, 0.1, 1e-5)
        (gx,) = torch.autograd.grad(y, x, gy, create_graph=True)
        out.append(torch.autograd.grad(gx, (gy, x), ggx, allow_unused=True))
    torch.testing.assert_close(out[1][0], out[0][0], rtol=1e-10, atol=1e-12)
    assert out[1][1] is None and out[0][1].abs().max() > 1e-3


def test_parameters_are_restored_even_after_an_error():
    net = _net()
    net[0].weight.requires_grad_(False)  # a parameter frozen before stays frozen
    with pytest.raises(RuntimeError, match="boom"), fast_double_backward(net):
        assert not any(p.requires_grad for p in net.parameters())
        raise RuntimeError("boom")
    assert [p.requires_grad for p in net.parameters()] == [False] + [True] * (len(list(net.parameters())) - 1)


def test_no_grad_and_eval_mode_take_the_plain_path():
    net = _net().eval()
    x, _ = _inputs()
    with torch.no_grad(), fast_double_backward(net, output_gradients_only=True):
        y = net(x)
    assert y.grad_fn is None
    with fast_double_backward(net, output_gradients_only=True):
        z = net(x.requires_grad_(True))
    names = _graph_node_names(z)
    assert "_ConvBackward" in names  # convs are routed ...
    assert "_BatchNormBackward" not in names and "NativeBatchNormBackward0" in names  # ... eval BN is not
    torch.testing.assert_close(z, net(x), rtol=1e-12, atol=1e-14)


def _graph_node_names(t: torch.Tensor) -> set[str]:
    seen, stack, names = set(), [t.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(n for n, _ in node.next_functions)
    return names


@pytest.mark.parametrize(
    "hessian,convs,batch_norm",
    [("ggn", True, True), ("empirical-fisher", True, True), ("exact", True, False), ("ggn-rank1", False, False)],
)
def test_child_forward_context_routes_by_product(hessian, convs, batch_norm):
    """Gauss-Newton products: convs and BN routed; exact: convs only (BN's curvature kept); no double
    backward (rank-1, λ = 0): plain autograd. Weights are frozen inside a routed context only."""
    net = _supernet(binary=True)
    alphas = _supernet_alphas(net)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    with child_forward_context(net, lam=5e-3, hessian=hessian):
        frozen = not any(p.requires_grad for p in net.parameters())
        names = _graph_node_names(net(x, torch.softmax(alphas[0], -1), torch.softmax(alphas[1], -1)))
    assert frozen is convs
    assert ("_ConvBackward" in names) is convs and ("_BatchNormBackward" in names) is batch_norm
    assert all(p.requires_grad for p in net.parameters())
    with child_forward_context(net, lam=0.0, hessian=hessian):
        names = _graph_node_names(net(x, torch.softmax(alphas[0], -1), torch.softmax(alphas[1], -1)))
    assert "_ConvBackward" not in names


def _supernet(binary: bool) -> Supernet:
    torch.manual_seed(0)
    policy = BinarizationPolicy.strict() if binary else BinarizationPolicy.real()
    return (
        Supernet(SupernetConfig(channels=4, layers=3, steps=2, multiplier=2), num_classes=3, policy=policy)
        .double()
        .train()
    )


def _supernet_alphas(net: Supernet) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [
        torch.randn(net.num_edges, net.num_ops, generator=g, dtype=torch.float64).requires_grad_(True) for _ in range(2)
    ]


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("hessian", ["ggn", "empirical-fisher", "exact"])
def test_supernet_tangent_gradient_unchanged_by_the_context(binary, hessian):
    """On the search supernets themselves (train-mode BN, sign functions), float64: the same α-gradient
    with the curvature product, routed as the search routes it or on plain autograd."""
    from contextlib import nullcontext

    from binas.objectives.tangent import tangent_arch_gradient

    results = []
    for routed in (False, True):
        net = _supernet(binary)
        alphas = _supernet_alphas(net)
        g = torch.Generator().manual_seed(2)
        x = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64)
        teacher = torch.randn(4, 3, generator=g, dtype=torch.float64)
        g_parent = [torch.randn(a.shape, generator=g, dtype=torch.float64) for a in alphas]
        with child_forward_context(net, lam=1.0, hessian=hessian) if routed else nullcontext():
            z = net(x, torch.softmax(alphas[0], -1), torch.softmax(alphas[1], -1))
        step = tangent_arch_gradient(z, teacher, alphas, g_parent, lam=1.0, hessian=hessian)
        assert step.correction_norm > 0
        results.append(step.gradient)
    for p, f in zip(*results):
        torch.testing.assert_close(f, p, rtol=1e-9, atol=1e-12)


def test_autocast_takes_the_plain_path():
    net = _net().float()
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    with fast_double_backward(net, output_gradients_only=True), torch.autocast("cpu", dtype=torch.bfloat16):
        z = net(x)
    assert "_ConvBackward" not in _graph_node_names(z)
    z.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_one_value_per_channel_raises_as_in_pytorch():
    with fast_double_backward(output_gradients_only=True), pytest.raises(ValueError, match="more than 1 value"):
        nn.BatchNorm2d(3).train()(torch.randn(1, 3, 1, 1, requires_grad=True))
