"""Every candidate op x family x policy x stride: shapes, gradients, binary weights (spec §2.2, §3.2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from binas.errors import RegistryError
from binas.quant.functional import hard_sign
from binas.quant.layers import QuantConv2d
from binas.quant.policy import BinarizationPolicy
from binas.space.ops import OP_FAMILIES, OPS, FactorizedReduce, Residual, Zero, build_op
from binas.space.primitives import PRIMITIVES

C = 4
POLICIES = ["real", "released", "strict"]


def test_op_table_is_darts_primitives() -> None:
    assert set(OPS.names()) == set(PRIMITIVES) and len(PRIMITIVES) == 8
    assert OP_FAMILIES.names() == ["darts", "dcp"]
    with pytest.raises(RegistryError, match="sep_conv_3x3"):
        build_op("sep_conv_7x7", C, 1)
    with pytest.raises(RegistryError, match="op family"):
        build_op("sep_conv_3x3", C, 1, family="nasnet")


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("family", ["darts", "dcp"])
@pytest.mark.parametrize("name", PRIMITIVES)
def test_op_shape_and_gradients(name: str, family: str, policy: str, stride: int) -> None:
    torch.manual_seed(0)
    op = build_op(name, C, stride, family=family, policy=BinarizationPolicy.preset(policy))
    for size in (8, 7):  # odd sizes round up under stride 2, like every strided op here
        x = torch.randn(2, C, size, size, requires_grad=True)
        y = op(x)
        out = -(-size // stride)
        assert y.shape == (2, C, out, out)
        (y * torch.randn_like(y)).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
    for p in op.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("family", ["darts", "dcp"])
@pytest.mark.parametrize("name", PRIMITIVES)
def test_binary_weights_are_plus_minus_beta_per_channel(
    name: str, family: str, policy: str, stride: int
) -> None:
    torch.manual_seed(0)
    op = build_op(name, C, stride, family=family, policy=BinarizationPolicy.preset(policy))
    convs = [m for m in op.modules() if isinstance(m, QuantConv2d)]
    binary = [m for m in convs if m.binary_weights]
    assert (len(binary) > 0) == (policy != "real" and len(convs) > 0)
    assert len(binary) in (0, len(convs))  # both binary policies binarize the weights of every role
    for conv in binary:
        w = conv.weight.detach()
        beta = conv.weight_quantizer.scale(w)  # type: ignore[union-attr]
        assert beta.shape == (conv.out_channels, 1, 1, 1) and (beta > 0).all()
        assert torch.allclose(conv.quantized_weight().detach(), beta * hard_sign(w))


@pytest.mark.parametrize("family", ["darts", "dcp"])
@pytest.mark.parametrize("name", [n for n in PRIMITIVES if "conv" in n])
def test_released_binarizes_only_pointwise_inputs(name: str, family: str) -> None:
    op = build_op(name, C, 1, family=family, policy=BinarizationPolicy.released())
    for conv in (m for m in op.modules() if isinstance(m, QuantConv2d)):
        pointwise = conv.kernel_size == (1, 1) and conv.groups == 1
        assert conv.binary_activations == pointwise


@pytest.mark.parametrize("stride", [1, 2])
def test_none_gives_zeros(stride: int) -> None:
    op = build_op("none", C, stride)
    assert isinstance(op, Zero)
    y = op(torch.randn(2, C, 7, 7))
    assert y.shape == (2, C, 4 if stride == 2 else 7, 4 if stride == 2 else 7) and not y.any()


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_darts_sep_conv_3x3_is_darts_structure() -> None:
    C8 = 8
    op = build_op("sep_conv_3x3", C8, 2, family="darts", policy=BinarizationPolicy.real(), affine=True)
    halves = list(op.children())
    assert len(halves) == 2
    for i, half in enumerate(halves):
        relu, dw, pw, bn = half
        assert isinstance(relu, nn.ReLU) and isinstance(bn, nn.BatchNorm2d) and bn.affine
        assert (dw.kernel_size, dw.groups, dw.padding, dw.stride) == ((3, 3), C8, (1, 1), (2 - i, 2 - i))
        assert (pw.kernel_size, pw.groups, pw.bias) == ((1, 1), 1, None)
    # 2 x (depth-wise C*9 + point-wise C*C) weights + 2 affine BNs (2C each)
    assert n_params(op) == 2 * (C8 * 9 + C8 * C8) + 2 * 2 * C8


def test_darts_dil_conv_and_skip_structure() -> None:
    dil = build_op("dil_conv_5x5", C, 1, family="darts")
    relu, dw, pw, bn = dil
    assert (dw.kernel_size, dw.dilation, dw.padding, dw.groups) == ((5, 5), (2, 2), (4, 4), C)
    assert n_params(dil) == C * 25 + C * C + 2 * C
    assert isinstance(build_op("skip_connect", C, 1), nn.Identity)
    assert isinstance(build_op("skip_connect", C, 2), FactorizedReduce)


def test_binary_darts_ops_drop_relu_before_binary_input() -> None:
    op = build_op("dil_conv_3x3", C, 1, family="darts", policy=BinarizationPolicy.strict())
    assert not any(isinstance(m, nn.ReLU) for m in op.modules())
    released = build_op("dil_conv_3x3", C, 1, family="darts", policy=BinarizationPolicy.released())
    assert isinstance(released[0], nn.ReLU)  # the depth-wise conv keeps real inputs


def test_dcp_conv_block_has_internal_residual_only_at_stride_one() -> None:
    assert isinstance(build_op("dil_conv_3x3", C, 1, family="dcp")[0], Residual)
    assert not isinstance(build_op("dil_conv_3x3", C, 2, family="dcp")[0], Residual)
    pool = build_op("max_pool_3x3", C, 1, family="dcp")
    assert isinstance(pool[1], nn.BatchNorm2d) and pool[1].eps == 1e-3


def test_darts_pools_get_search_bn_only_in_search() -> None:
    assert isinstance(build_op("avg_pool_3x3", C, 1, family="darts"), nn.AvgPool2d)
    searched = build_op("avg_pool_3x3", C, 1, family="darts", affine=False, in_search=True)
    assert isinstance(searched[1], nn.BatchNorm2d) and not searched[1].affine


@pytest.mark.parametrize("family", ["darts", "dcp"])
@pytest.mark.parametrize("name", PRIMITIVES)
def test_stride_two_on_non_square_even_odd_sizes(name: str, family: str) -> None:
    y = build_op(name, C, 2, family=family)(torch.randn(1, C, 8, 7))
    assert y.shape == (1, C, 4, 4)


@pytest.mark.parametrize("family", ["darts", "dcp"])
def test_factorized_reduce_on_odd_height_even_width(family: str) -> None:
    y = build_op("skip_connect", C, 2, family=family)(torch.randn(1, C, 7, 8))
    assert y.shape == (1, C, 4, 4)
