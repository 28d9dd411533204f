"""`MixedOp`: the weighted sum of DARTS Eq. 2, op skipping, and PC-DARTS partial channels."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import nn

from binas.quant.policy import BinarizationPolicy
from binas.space.mixed import MixedOp, channel_shuffle
from binas.space.primitives import PRIMITIVES

C = 8


def count_calls(mixed: MixedOp) -> Counter[int]:
    """Forward-hook every op of `mixed`; the counter maps op index -> number of calls."""
    calls: Counter[int] = Counter()
    for m, op in enumerate(mixed.ops):
        op.register_forward_hook(lambda *_, m=m: calls.update([m]))
    return calls


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("family", "policy"), [("darts", "real"), ("dcp", "released"), ("darts", "strict")])
def test_weighted_sum_equals_manual_sum(stride: int, family: str, policy: str) -> None:
    torch.manual_seed(0)
    mixed = MixedOp(C, stride, family=family, policy=BinarizationPolicy.preset(policy)).eval()
    x = torch.randn(2, C, 8, 8)
    w = torch.softmax(torch.randn(len(PRIMITIVES)), dim=0)
    manual = sum(w[m] * op(x) for m, op in enumerate(mixed.ops))
    assert torch.allclose(mixed(x, w, range(len(PRIMITIVES))), manual, atol=1e-6)


def test_only_active_ops_run_and_none_never_runs() -> None:
    mixed = MixedOp(C, 1).eval()
    calls = count_calls(mixed)
    x = torch.randn(1, C, 6, 6)
    w = torch.tensor([0.3, 0.0, 0.2, 0.0, 0.5, 0.0, 0.0, 0.0])
    out = mixed(x, w, [0, 2, 4])  # `none` (index 0) is active with a non-zero weight
    assert set(calls) == {2, 4} and all(n == 1 for n in calls.values())
    assert torch.allclose(out, 0.2 * mixed.ops[2](x) + 0.5 * mixed.ops[4](x))


def test_single_path_without_weights() -> None:
    mixed = MixedOp(C, 2).eval()
    x = torch.randn(1, C, 6, 6)
    assert torch.equal(mixed(x, None, [5]), mixed.ops[5](x))


@pytest.mark.parametrize("stride", [1, 2])
def test_only_none_active_gives_zeros_of_the_output_shape(stride: int) -> None:
    y = MixedOp(C, stride)(torch.randn(2, C, 7, 7), torch.ones(len(PRIMITIVES)), [0])
    assert y.shape == (2, C, 4 if stride == 2 else 7, 4 if stride == 2 else 7) and not y.any()


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("stride", [1, 2])
def test_partial_channels_keep_the_shape(k: int, stride: int) -> None:
    mixed = MixedOp(C, stride, partial_channels=k)
    assert all(op.in_channels == C // k for op in mixed.modules() if isinstance(op, nn.Conv2d))
    x = torch.randn(2, C, 8, 8, requires_grad=True)
    w = torch.softmax(torch.randn(len(PRIMITIVES)), dim=0)
    y = mixed(x, w, range(len(PRIMITIVES)))
    assert y.shape == (2, C, 8 // stride, 8 // stride)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_partial_channels_stride_two_on_odd_sizes() -> None:
    y = MixedOp(C, 2, partial_channels=2)(torch.randn(1, C, 7, 7), None, [PRIMITIVES.index("sep_conv_3x3")])
    assert y.shape == (1, C, 4, 4)


@pytest.mark.parametrize("k", [2, 4])
def test_partial_channels_identity_edge_is_a_channel_shuffle(k: int) -> None:
    x = torch.randn(1, C, 5, 5)
    y = MixedOp(C, 1, partial_channels=k)(x, None, [PRIMITIVES.index("skip_connect")])
    assert torch.equal(y, channel_shuffle(x, k))


def test_partial_channels_must_divide() -> None:
    with pytest.raises(ValueError, match="partial_channels"):
        MixedOp(6, 1, partial_channels=4)


@pytest.mark.parametrize(("channels", "groups"), [(4, 2), (8, 2), (8, 4), (12, 3)])
def test_channel_shuffle_is_a_permutation(channels: int, groups: int) -> None:
    x = torch.arange(channels, dtype=torch.float32).view(1, channels, 1, 1).expand(2, channels, 3, 3)
    y = channel_shuffle(x, groups)
    order = y[0, :, 0, 0].long().tolist()
    assert sorted(order) == list(range(channels))
    per_group = channels // groups
    assert order == [g * per_group + i for i in range(per_group) for g in range(groups)]
    assert torch.equal(y, x[:, order])


def test_channel_shuffle_small_case_by_hand() -> None:
    x = torch.arange(4.0).view(1, 4, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0.0, 2.0, 1.0, 3.0]
