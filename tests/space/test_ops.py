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
def test_binary_weights_are_plus_minus_beta_per_channel(name: str, family: str, policy: str, stride: int) -> None:
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


def _walk(module: nn.Module, prev: str | None, checked: list[str]) -> str | None:
    """Follow the data through `module` from an input made by a layer of kind `prev` ("conv", "bn",
    "other" or None for the op's input); at each binary-activation conv append the kind of layer its input
    comes from to `checked`. Returns the kind of layer the module's output comes from."""
    if isinstance(module, QuantConv2d):
        if module.binary_activations:
            checked.append(str(prev))
        return "conv"
    if isinstance(module, FactorizedReduce):  # two parallel convs on the same input, then concatenated
        pre = _walk(module.pre, prev, checked)
        _walk(module.conv_a, pre, checked)
        _walk(module.conv_b, pre, checked)
        return _walk(module.post, "other", checked)
    if isinstance(module, nn.Sequential):
        for child in module:
            prev = _walk(child, prev, checked)
        return prev
    assert not isinstance(module, Residual), "the darts family has no residual ops"
    if isinstance(module, nn.BatchNorm2d):
        return "bn"
    return prev if isinstance(module, nn.Identity) else "other"


@pytest.mark.parametrize("in_search", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("policy", ["released", "strict"])
@pytest.mark.parametrize("name", PRIMITIVES)
def test_binary_darts_ops_put_a_bn_between_every_conv_and_sign(
    name: str, policy: str, stride: int, in_search: bool
) -> None:
    affine = not in_search
    op = build_op(
        name, C, stride, family="darts", policy=BinarizationPolicy.preset(policy), affine=affine, in_search=in_search
    )
    checked: list[str] = []
    _walk(op, None, checked)
    assert "conv" not in checked  # no sign() applied to a conv's raw output
    if "conv" in name:  # every point-wise conv (2 in a sep conv, 1 in a dil conv) has a binary input
        assert checked.count("bn") >= (2 if name.startswith("sep") else 1)
    # the inserted BNs follow the family's affine setting (DARTS's search ops: affine=False)
    conv_bns = [m for m in op.modules() if isinstance(m, nn.BatchNorm2d) and m.num_features == C]
    assert all(bn.affine == affine for bn in conv_bns if "pool" not in name)


def test_darts_bn_before_sign_only_for_binary_pointwise_inputs() -> None:
    C8 = 8
    real = build_op("sep_conv_3x3", C8, 1, family="darts", policy=BinarizationPolicy.real())
    released = build_op("sep_conv_3x3", C8, 1, family="darts", policy=BinarizationPolicy.released())
    for half in released:
        relu, dw, bn_mid, pw, bn = half  # book Fig. 4.8: dw -> BN -> sign -> 1x1 -> BN (ReLU kept: real dw input)
        assert isinstance(bn_mid, nn.BatchNorm2d) and bn_mid.num_features == C8 and bn_mid.eps == 1e-5
        assert pw.binary_activations and not dw.binary_activations
    # each half gains one affine BN on C channels (2C parameters); the real op is DARTS's, unchanged
    assert n_params(released) == n_params(real) + 2 * 2 * C8
    assert n_params(real) == 2 * (C8 * 9 + C8 * C8) + 2 * 2 * C8
    strict = build_op("dil_conv_5x5", C8, 1, family="darts", policy=BinarizationPolicy.strict())
    assert [type(m) for m in strict] == [QuantConv2d, nn.BatchNorm2d, QuantConv2d, nn.BatchNorm2d]


def test_dcp_family_uses_the_release_bn_eps() -> None:
    # models/darts_ops_step2_sc_out.py: 1e-3 for DilConv bn0/bn1/bn2, PoolBN, the BN after ReLUConvBN's
    # conv and FactorizedReduce's `bn`; PyTorch's 1e-5 for the BNs in front of those two convs.
    fam = OP_FAMILIES.get("dcp")
    policy = BinarizationPolicy.released()
    dil = build_op("dil_conv_3x3", C, 1, family="dcp", policy=policy)
    assert [m.eps for m in dil.modules() if isinstance(m, nn.BatchNorm2d)] == [1e-3] * 3
    sep = build_op("sep_conv_5x5", C, 2, family="dcp", policy=policy)
    assert [m.eps for m in sep.modules() if isinstance(m, nn.BatchNorm2d)] == [1e-3] * 6
    pre = fam.preprocess(2 * C, C, True, policy)
    assert [m.eps for m in pre.modules() if isinstance(m, nn.BatchNorm2d)] == [1e-5, 1e-3]
    fr = fam.factorized_reduce(2 * C, C, True, policy)
    assert [m.eps for m in fr.modules() if isinstance(m, nn.BatchNorm2d)] == [1e-5, 1e-3]
    # the darts family keeps DARTS's (PyTorch's) default everywhere
    darts = [build_op(n, C, 2, family="darts", policy=policy, in_search=True) for n in PRIMITIVES]
    assert {m.eps for op in darts for m in op.modules() if isinstance(m, nn.BatchNorm2d)} == {1e-5}


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
