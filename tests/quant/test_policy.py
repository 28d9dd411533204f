"""Binarization policy presets (spec §3.2, A8)."""

from __future__ import annotations

import dataclasses

import pytest

from binas.errors import ConfigError
from binas.quant.layers import QuantConv2d
from binas.quant.policy import CONV_ROLES, BinarizationPolicy, ConvSpec


def test_roles() -> None:
    assert CONV_ROLES == ("preprocess", "reduce", "depthwise", "pointwise")


@pytest.mark.parametrize("role", CONV_ROLES)
def test_released_binarizes_all_weights_and_only_pointwise_activations(role: str) -> None:
    spec = BinarizationPolicy.released().spec(role)
    assert spec.weight_quantizer == "mean_abs"
    assert spec.binary_activations == (role == "pointwise")
    assert spec.input_quantizer == ("approx_sign" if role == "pointwise" else None)


@pytest.mark.parametrize("role", CONV_ROLES)
def test_strict_binarizes_everything(role: str) -> None:
    spec = BinarizationPolicy.strict().spec(role)
    assert (spec.input_quantizer, spec.weight_quantizer) == ("approx_sign", "mean_abs")


@pytest.mark.parametrize("role", CONV_ROLES)
def test_real_binarizes_nothing(role: str) -> None:
    policy = BinarizationPolicy.real()
    assert policy.is_real and policy.spec(role) == ConvSpec(None, None)


@pytest.mark.parametrize("name", ["released", "strict"])
def test_activations_only_clears_weights(name: str) -> None:
    policy = BinarizationPolicy.preset(name)
    step1 = policy.activations_only()
    assert step1.weights == frozenset() and step1.activations == policy.activations
    assert step1.name == f"{name}-step1" and not step1.is_real
    assert all(step1.spec(role).weight_quantizer is None for role in CONV_ROLES)


def test_presets_by_name_and_quantizer_overrides() -> None:
    assert BinarizationPolicy.preset("real") == BinarizationPolicy.real()
    assert BinarizationPolicy.preset("strict") == BinarizationPolicy.strict()
    p = BinarizationPolicy.preset("released", weight_quantizer="learned_scale", act_quantizer="ste_sign")
    assert p.name == "released"
    assert p.spec("pointwise") == ConvSpec("ste_sign", "learned_scale")


def test_unknown_preset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="binarization policy 'book'"):
        BinarizationPolicy.preset("book")


def test_policy_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BinarizationPolicy.real().name = "x"  # type: ignore[misc]


def test_conv_spec_builds_quant_conv() -> None:
    conv = ConvSpec("approx_sign", "mean_abs").conv(4, 6, 3, 2, 1, 1, groups=2)
    assert isinstance(conv, QuantConv2d) and conv.bias is None
    assert conv.binary_weights and conv.binary_activations
    assert (conv.stride, conv.padding, conv.groups) == ((2, 2), (1, 1), 2)
