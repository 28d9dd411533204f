"""`QuantConv2d`: real convs are exactly `nn.Conv2d`, binary ones conv sign'd tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from binas.errors import RegistryError
from binas.quant.functional import hard_sign
from binas.quant.layers import QuantConv2d, quant_convs
from binas.quant.quantizers import ApproxSign, LearnedScaleSign, MeanAbsSign, SignSTE

# (stride, padding, dilation, groups) on a 4 -> 8 channel 3x3 conv
GEOMETRIES = [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (2, 1, 1, 2), (1, 1, 1, 4), (2, 2, 2, 4)]


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"), GEOMETRIES)
@pytest.mark.parametrize("bias", [False, True])
def test_real_quant_conv_is_nn_conv2d(stride: int, padding: int, dilation: int, groups: int, bias: bool) -> None:
    torch.manual_seed(0)
    ref = nn.Conv2d(4, 8, 3, stride, padding, dilation, groups, bias=bias)
    conv = QuantConv2d(4, 8, 3, stride, padding, dilation, groups, bias)
    conv.load_state_dict(ref.state_dict())
    assert not conv.binary_weights and not conv.binary_activations
    assert conv.quantized_weight() is conv.weight
    x = torch.randn(2, 4, 9, 9)
    assert torch.equal(conv(x), ref(x))


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"), GEOMETRIES)
@pytest.mark.parametrize("act", ["approx_sign", "ste_sign"])
def test_binary_quant_conv_convolves_signs_with_scaled_sign_weight(
    stride: int, padding: int, dilation: int, groups: int, act: str
) -> None:
    torch.manual_seed(1)
    conv = QuantConv2d(4, 8, 3, stride, padding, dilation, groups, input_quantizer=act, weight_quantizer="mean_abs")
    x = torch.randn(2, 4, 9, 9)
    beta = conv.weight.detach().abs().mean(dim=(1, 2, 3), keepdim=True)
    wq = beta * hard_sign(conv.weight.detach())
    expected = F.conv2d(hard_sign(x), wq, None, stride, padding, dilation, groups)
    assert torch.allclose(conv(x), expected, atol=1e-6)


def test_learned_scale_conv_uses_point_zero_two_abs_m() -> None:
    torch.manual_seed(2)
    conv = QuantConv2d(3, 5, 3, padding=1, input_quantizer="approx_sign", weight_quantizer="learned_scale")
    x = torch.randn(1, 3, 6, 6)
    wq = 0.02 * conv.weight_quantizer.m.detach().abs() * hard_sign(conv.weight.detach())  # type: ignore[union-attr]
    assert torch.allclose(conv.quantized_weight(), wq)
    assert torch.allclose(conv(x), F.conv2d(hard_sign(x), wq, padding=1), atol=1e-6)


def test_binary_weights_only_keeps_real_input() -> None:
    torch.manual_seed(3)
    conv = QuantConv2d(3, 5, 1, weight_quantizer="mean_abs")
    x = torch.randn(1, 3, 4, 4)
    assert conv.binary_weights and not conv.binary_activations
    assert torch.allclose(conv(x), F.conv2d(x, conv.quantized_weight()), atol=1e-6)


def test_gradients_reach_latent_weights_and_input() -> None:
    conv = QuantConv2d(2, 3, 3, padding=1, input_quantizer="approx_sign", weight_quantizer="learned_scale")
    x = (0.5 * torch.randn(1, 2, 5, 5)).requires_grad_(True)
    conv(x).sum().backward()
    for g in (x.grad, conv.weight.grad, conv.weight_quantizer.m.grad):  # type: ignore[union-attr]
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "act_cls", "weight_cls"),
    [
        ({"input_quantizer": "approx_sign", "weight_quantizer": "mean_abs"}, ApproxSign, MeanAbsSign),
        ({"weight_quantizer": "mean_abs"}, None, MeanAbsSign),
        ({"input_quantizer": "approx_sign"}, ApproxSign, None),
        ({}, None, None),
        ({"input_quantizer": "ste_sign", "weight_quantizer": "learned_scale"}, SignSTE, LearnedScaleSign),
    ],
)
def test_quantizer_names_pick_the_quantizers(kwargs: dict, act_cls: type | None, weight_cls: type | None) -> None:
    conv = QuantConv2d(4, 4, 3, padding=1, **kwargs)
    assert conv.binary_activations == (act_cls is not None)
    assert conv.binary_weights == (weight_cls is not None)
    if act_cls is not None:
        assert type(conv.input_quantizer) is act_cls
    if weight_cls is not None:
        assert type(conv.weight_quantizer) is weight_cls
    w, a = ("1" if weight_cls else "32"), ("1" if act_cls else "32")
    assert f"w={w}bit, a={a}bit" in repr(conv)


def test_unknown_quantizer_name_in_conv() -> None:
    with pytest.raises(RegistryError):
        QuantConv2d(2, 2, 1, input_quantizer="nope")
    with pytest.raises(RegistryError):
        QuantConv2d(2, 2, 1, weight_quantizer="nope")


def test_quant_convs_lists_binary_weight_convs_in_order() -> None:
    a = QuantConv2d(2, 2, 1, weight_quantizer="mean_abs")
    b = QuantConv2d(2, 2, 1, input_quantizer="approx_sign")
    c = QuantConv2d(2, 2, 1, input_quantizer="approx_sign", weight_quantizer="mean_abs")
    model = nn.Sequential(a, nn.Conv2d(2, 2, 1), b, c)
    assert quant_convs(model) == [a, c]


def test_ste_clip_reaches_the_quantizers_that_take_it() -> None:
    from binas.config.io import from_dict
    from binas.config.schema import SpaceConfig
    from binas.errors import ConfigError
    from binas.nets.model_file import ModelSpec

    policy = from_dict(SpaceConfig, {"policy": "strict", "act_quantizer": "ste_sign", "ste_clip": 2.5}).binary_policy()
    conv = policy.spec("pointwise").conv(2, 2, 1)
    assert conv.input_quantizer.get_config() == {"clip": 2.5} and conv.weight_quantizer.get_config() == {"clip": 2.5}
    x = torch.full((1, 2, 3, 3), 2.0, requires_grad=True)  # inside the wider clip: the STE passes the gradient
    conv(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert ModelSpec.policy_dict(policy)["ste_clip"] == 2.5
    approx = QuantConv2d(2, 2, 1, input_quantizer="approx_sign", quantizer_args={"clip": 2.5})
    assert approx.input_quantizer.get_config() == {}  # ApproxSign has no clip: the shared setting skips it
    with pytest.raises(ConfigError, match="ste_clip"):
        from_dict(SpaceConfig, {"ste_clip": 0})
