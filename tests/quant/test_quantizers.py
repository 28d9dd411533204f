"""Quantizer modules and their registries."""

from __future__ import annotations

import pytest
import torch

from binas.errors import RegistryError
from binas.quant.quantizers import (
    ACT_QUANTIZERS,
    WEIGHT_QUANTIZERS,
    ActQuantizer,
    ApproxSign,
    LearnedScaleSign,
    MeanAbsSign,
    SignSTE,
    WeightQuantizer,
    make_act_quantizer,
    make_weight_quantizer,
)


def test_registry_names() -> None:
    assert ACT_QUANTIZERS.names() == ["ste_sign", "approx_sign"]
    assert WEIGHT_QUANTIZERS.names() == ["mean_abs", "learned_scale"]


@pytest.mark.parametrize("name", ACT_QUANTIZERS.names())
def test_every_activation_quantizer_gives_plus_minus_one(name: str) -> None:
    q = make_act_quantizer(name)
    assert isinstance(q, ActQuantizer) and q.precision == 1
    x = torch.tensor([-2.0, -0.3, 0.0, 0.4, 5.0])
    assert torch.equal(q(x), torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0]))


@pytest.mark.parametrize("name", WEIGHT_QUANTIZERS.names())
def test_every_weight_quantizer_gives_two_values_per_channel(name: str) -> None:
    torch.manual_seed(0)
    q = make_weight_quantizer(name, 3)
    assert isinstance(q, WeightQuantizer) and q.precision == 1
    w = torch.randn(3, 2, 3, 3)
    wq = q(w)
    beta = q.scale(w)
    assert beta.shape == (3, 1, 1, 1)
    assert torch.allclose(wq, beta * torch.where(w >= 0, 1.0, -1.0))


def test_concrete_classes() -> None:
    assert isinstance(make_act_quantizer("ste_sign"), SignSTE)
    assert isinstance(make_act_quantizer("approx_sign"), ApproxSign)
    assert isinstance(make_weight_quantizer("mean_abs", 4), MeanAbsSign)
    learned = make_weight_quantizer("learned_scale", 4)
    assert isinstance(learned, LearnedScaleSign) and learned.m.shape == (4, 1, 1, 1)
    assert SignSTE(0.5).clip == 0.5 and "clip=0.5" in repr(SignSTE(0.5))


def test_learned_scale_is_point_zero_two_abs_m() -> None:
    q = LearnedScaleSign(2)
    with torch.no_grad():
        q.m.copy_(torch.tensor([-3.0, 2.0]).view(2, 1, 1, 1))
    assert torch.allclose(q.scale(torch.ones(2, 1, 1, 1)).flatten(), torch.tensor([0.06, 0.04]))


def test_none_and_objects_pass_through() -> None:
    assert make_act_quantizer(None) is None and make_weight_quantizer(None, 3) is None
    a, w = ApproxSign(), MeanAbsSign(3)
    assert make_act_quantizer(a) is a and make_weight_quantizer(w, 3) is w


def test_unknown_names_raise_registry_error_listing_choices() -> None:
    with pytest.raises(RegistryError, match="approx_sign"):
        make_act_quantizer("tanh")
    with pytest.raises(RegistryError, match="mean_abs"):
        make_weight_quantizer("xnor++", 3)
    with pytest.raises(RegistryError, match="already registered"):
        ACT_QUANTIZERS.register("ste_sign", SignSTE)
