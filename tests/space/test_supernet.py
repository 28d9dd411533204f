"""`Supernet`: relaxed, one-hot and single-path forwards agree; bad shapes are `ShapeError`s."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from binas.errors import ShapeError
from binas.quant.policy import BinarizationPolicy
from binas.space.arch_params import ArchParameters
from binas.space.supernet import Supernet, SupernetConfig

E, M = 14, 8
TINY = SupernetConfig(channels=4, layers=3)


@pytest.fixture(scope="module")
def net() -> Supernet:
    torch.manual_seed(0)
    return Supernet(TINY, num_classes=5).eval()


def random_indices(seed: int) -> torch.Tensor:
    return torch.randint(0, M, (E,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", [0, 1])
def test_op_indices_equal_one_hot_weights(net: Supernet, seed: int) -> None:
    x = torch.randn(2, 3, 8, 8)
    idx_n, idx_r = random_indices(seed), random_indices(seed + 10)
    with torch.no_grad():
        by_index = net(x, idx_n, idx_r)
        by_one_hot = net(x, F.one_hot(idx_n, M).float(), F.one_hot(idx_r, M).float())
    assert by_index.shape == (2, 5)
    assert torch.allclose(by_index, by_one_hot, atol=1e-6)


def test_zero_weight_ops_are_not_run(net: Supernet) -> None:
    calls: Counter[tuple[int, int]] = Counter()
    cell = net.cells[0]  # a normal cell
    handles = [
        op.register_forward_hook(lambda *_, key=(e, m): calls.update([key]))
        for e, edge in enumerate(cell.edges)
        for m, op in enumerate(edge.ops)
    ]
    idx = random_indices(3)
    idx[0], idx[1] = 0, 4  # `none` on edge 0: its zeros come from `none`, nothing else runs there
    try:
        with torch.no_grad():
            net(torch.randn(1, 3, 8, 8), F.one_hot(idx, M).float(), F.one_hot(random_indices(4), M).float())
    finally:
        for h in handles:
            h.remove()
    expected = {(e, int(m)) for e, m in enumerate(idx)}
    assert set(calls) == expected and all(n == 1 for n in calls.values())


def test_relaxed_forward_and_gradients_reach_alpha() -> None:
    torch.manual_seed(1)
    net = Supernet(SupernetConfig(channels=4, layers=3, partial_channels=2), num_classes=5)
    arch = ArchParameters(net.topology, net.num_ops, edge_normalization=True)
    y = net(torch.randn(2, 3, 8, 8), **arch.forward_kwargs())
    assert y.shape == (2, 5)
    y.sum().backward()
    for p in arch.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize("family", ["darts", "dcp"])
@pytest.mark.parametrize("policy", ["real", "strict"])
def test_single_path_forward_backward(family: str, policy: str) -> None:
    torch.manual_seed(2)
    cfg = SupernetConfig(channels=4, layers=3, family=family, stem="imagenet")
    net = Supernet(cfg, num_classes=3, policy=BinarizationPolicy.preset(policy))
    y = net(torch.randn(2, 3, 32, 32), random_indices(5), random_indices(6))
    assert y.shape == (2, 3)
    y.sum().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(("family", "rectified"), [("dcp", True), ("darts", False)])
def test_imagenet_stem_rectifies_s0_for_the_dcp_family(family: str, rectified: bool) -> None:
    # The DCP-NAS release's first cell gets ReLU(stem0(x)) (in-place ReLU of stem1, models/darts_cnn_m.py).
    net = Supernet(SupernetConfig(channels=4, layers=3, family=family, stem="imagenet"), num_classes=3)
    assert net.stem.rectify_s0 == rectified
    x = torch.randn(2, 3, 32, 32)
    s0, s1 = net.stem(x)
    raw = net.stem.stem0(x)
    assert torch.equal(s0, raw.relu() if rectified else raw) and torch.equal(s1, net.stem.stem1(raw))


def test_supernet_shape(net: Supernet) -> None:
    assert (net.num_edges, net.num_ops) == (E, M)
    assert [c.reduction for c in net.cells] == [False, True, True]


@pytest.mark.parametrize(
    ("normal", "reduce"),
    [
        (torch.zeros(E, M + 1), torch.zeros(E, M)),
        (torch.zeros(E, M), torch.zeros(E - 1, M)),
        (torch.zeros(E, M), torch.zeros(M)),
        (torch.zeros(E + 1, dtype=torch.long), torch.zeros(E, dtype=torch.long)),
        (torch.zeros(E, M, dtype=torch.long), torch.zeros(E, dtype=torch.long)),
    ],
)
def test_wrong_weight_shapes_raise_shape_error(net: Supernet, normal: torch.Tensor, reduce: torch.Tensor) -> None:
    with pytest.raises(ShapeError):
        net(torch.randn(1, 3, 8, 8), normal, reduce)


@pytest.mark.parametrize("shape", [(1, 1, 8, 8), (1, 4, 8, 8), (3, 8, 8)])
def test_wrong_input_raises_shape_error(net: Supernet, shape: tuple[int, ...]) -> None:
    w = torch.full((E, M), 1.0 / M)
    with pytest.raises(ShapeError, match="expected input"):
        net(torch.randn(*shape), w, w)


def test_zero_weight_op_still_gets_a_gradient_when_weights_require_grad(net: Supernet) -> None:
    w = torch.full((E, M), 1.0 / (M - 1))
    w[:, 1] = 0.0  # max_pool_3x3
    w.requires_grad_(True)
    (grad,) = torch.autograd.grad(net(torch.randn(2, 3, 8, 8), w, w.detach()).sum(), w)
    assert grad[:, 1].abs().sum() > 0
