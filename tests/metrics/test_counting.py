"""`profile_model` counts on tiny hand-computed models (Bi-Real Net convention)."""

from __future__ import annotations

import pytest
from torch import nn

from binas.errors import ConfigError
from binas.metrics import Profile, profile_model
from binas.quant.layers import QuantConv2d

# One 3x3 conv, 3 -> 8 channels, padding 1, on an 8x8 input.
CONV_MACS = 8 * 8 * 8 * 3 * 3 * 3  # C_out * H_out * W_out * C_in * k * k = 13824
CONV_WEIGHTS = 8 * 3 * 3 * 3  # 216


def one_conv(act: str | None = None, weight: str | None = None) -> nn.Module:
    return nn.Sequential(QuantConv2d(3, 8, 3, padding=1, input_quantizer=act, weight_quantizer=weight))


def conv_linear(act: str | None = None, weight: str | None = None) -> nn.Module:
    """3x3 stride-2 conv 3 -> 4 on 8x8 (-> 4x4), BN, global pool, Linear 4 -> 10."""
    return nn.Sequential(
        QuantConv2d(3, 4, 3, 2, 1, input_quantizer=act, weight_quantizer=weight),
        nn.BatchNorm2d(4),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 10),
    )


@pytest.mark.parametrize(
    ("act", "weight", "convention", "flops", "bops", "bits"),
    [
        (None, None, "strict", CONV_MACS, 0, 32 * CONV_WEIGHTS),
        (None, None, "lenient", CONV_MACS, 0, 32 * CONV_WEIGHTS),
        # binary weights, real activations: FLOPs when strict, BOPs when lenient; beta stored (8 x 32 bit)
        (None, "mean_abs", "strict", CONV_MACS, 0, CONV_WEIGHTS + 8 * 32),
        (None, "mean_abs", "lenient", 0, CONV_MACS, CONV_WEIGHTS + 8 * 32),
        ("approx_sign", "mean_abs", "strict", 0, CONV_MACS, CONV_WEIGHTS + 8 * 32),
        ("ste_sign", "mean_abs", "lenient", 0, CONV_MACS, CONV_WEIGHTS + 8 * 32),
        # binary activations with real weights are never BOPs
        ("approx_sign", None, "lenient", CONV_MACS, 0, 32 * CONV_WEIGHTS),
    ],
)
def test_one_conv(act: str | None, weight: str | None, convention: str, flops: int, bops: int, bits: int) -> None:
    p = profile_model(one_conv(act, weight), (1, 3, 8, 8), bops_convention=convention)  # type: ignore[arg-type]
    assert (p.params, p.flops, p.bops) == (CONV_WEIGHTS, flops, bops)
    assert p.ops == pytest.approx(bops / 64 + flops)
    assert p.memory_mbit == pytest.approx(bits / 1e6)
    assert p.bops_convention == convention


def test_learned_scale_is_a_parameter_counted_at_32_bits_and_not_again() -> None:
    p = profile_model(one_conv("approx_sign", "learned_scale"), (1, 3, 8, 8))
    assert p.params == CONV_WEIGHTS + 8
    assert p.memory_mbit == pytest.approx((CONV_WEIGHTS * 1 + 8 * 32) / 1e6)
    assert p.layers[0].params == CONV_WEIGHTS + 8


@pytest.mark.parametrize(
    ("act", "weight", "convention", "flops", "bops", "bits"),
    [
        (None, None, "strict", 1728 + 40, 0, 32 * (108 + 8 + 50)),
        (None, "mean_abs", "strict", 1728 + 40, 0, 108 + 4 * 32 + 32 * (8 + 50)),
        (None, "mean_abs", "lenient", 40, 1728, 108 + 4 * 32 + 32 * (8 + 50)),
        ("approx_sign", "mean_abs", "strict", 40, 1728, 108 + 4 * 32 + 32 * (8 + 50)),
    ],
)
def test_conv_bn_linear(act: str | None, weight: str | None, convention: str, flops: int, bops: int, bits: int) -> None:
    # conv: 4 * 4 * 4 * 3 * 9 = 1728 MACs, 108 weights; BN: 8 params, no MACs; Linear: 40 MACs, 50 params
    p = profile_model(conv_linear(act, weight), (1, 3, 8, 8), bops_convention=convention)  # type: ignore[arg-type]
    assert (p.params, p.flops, p.bops) == (108 + 8 + 50, flops, bops)
    assert p.ops == pytest.approx(bops / 64 + flops)
    assert p.memory_mbit == pytest.approx(bits / 1e6)


def test_fully_binary_conv_linear_ops_by_hand() -> None:
    p = profile_model(conv_linear("approx_sign", "mean_abs"), (1, 3, 8, 8))
    assert p.ops == 1728 / 64 + 40 == 67


@pytest.mark.parametrize(
    ("conv", "hw", "macs"),
    [
        (nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4), (9, 9), 16 * 5 * 5 * 2 * 9),
        (nn.Conv2d(4, 4, 3, padding=2, dilation=2), (7, 7), 4 * 7 * 7 * 4 * 9),
        (nn.Conv2d(6, 6, 5, padding=2, groups=6), (6, 6), 6 * 6 * 6 * 1 * 25),
        (nn.Conv2d(3, 5, (1, 3)), (4, 6), 5 * 4 * 4 * 3 * 3),
        (nn.Conv2d(4, 6, 3, stride=2, dilation=2), (11, 11), 6 * 4 * 4 * 4 * 9),
        (QuantConv2d(8, 8, 3, 2, 2, 2, groups=8, weight_quantizer="mean_abs"), (7, 7), 8 * 4 * 4 * 1 * 9),
    ],
)
def test_grouped_dilated_strided_conv_macs(conv: nn.Conv2d, hw: tuple[int, int], macs: int) -> None:
    p = profile_model(conv, (1, conv.in_channels, *hw))
    assert p.flops == macs and p.layers[0].macs == macs


def test_counts_are_per_image_and_per_call() -> None:
    conv = nn.Conv2d(2, 3, 1)
    assert profile_model(conv, (4, 2, 5, 5)).flops == 3 * 25 * 2
    shared = nn.Conv2d(3, 3, 1)
    twice = nn.Sequential(shared, nn.ReLU(), shared)  # one module called twice: MACs twice, params once
    p = profile_model(twice, (1, 3, 5, 5))
    assert p.flops == 2 * 3 * 25 * 3 and p.params == 9 + 3
    assert len(p.layers) == 1 and p.layers[0].macs == p.flops


def test_layer_rows() -> None:
    p = profile_model(conv_linear(None, "mean_abs"), (1, 3, 8, 8))
    conv, linear = p.layers
    assert (conv.name, conv.type, conv.weight_bits, conv.activation_bits) == ("0", "QuantConv2d", 1, 32)
    assert (conv.params, conv.macs, conv.counted_as) == (108, 1728, "FLOPs")
    assert (linear.name, linear.type, linear.weight_bits) == ("4", "Linear", 32)
    assert (linear.params, linear.macs, linear.counted_as) == (50, 40, "FLOPs")


class WithAux(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 4, 1)
        self.aux_head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 2 * 2, 7))

    def forward(self, x):  # type: ignore[no-untyped-def]
        y = self.body(x)
        return (y, self.aux_head(y)) if self.training else y


def test_aux_head_is_excluded() -> None:
    p = profile_model(WithAux(), (1, 3, 2, 2))
    assert p.params == 4 * 3 + 4
    assert p.flops == 4 * 4 * 3
    assert [l.name for l in p.layers] == ["body"]


def test_modes_are_restored_and_no_grad() -> None:
    model = conv_linear("approx_sign", "mean_abs").train()
    model[1].eval()
    profile_model(model, (1, 3, 8, 8))
    assert [m.training for m in model] == [True, False, True, True, True]
    assert all(p.grad is None for p in model.parameters())


def test_to_dict_and_table() -> None:
    p = profile_model(conv_linear("approx_sign", "mean_abs"), (1, 3, 8, 8))
    assert isinstance(p, Profile)
    assert set(p.to_dict()) == {"params", "flops", "bops", "ops", "memory_mbit", "bops_convention"}
    table = p.format_table(per_layer=True)
    for text in ("MFLOPs", "MBOPs", "Mbit", "QuantConv2d", "Linear", "strict", "1x3x8x8"):
        assert text in table
    assert "QuantConv2d" not in p.format_table()
    other = next(line for line in table.splitlines() if line.startswith("(other layers"))
    assert other.split()[-3] == "8"  # the BN's weight and bias, not in any counted layer
    total = next(line for line in table.splitlines() if line.startswith("total"))
    assert total.split()[1:] == ["166", "1,768"]


def test_unknown_convention() -> None:
    with pytest.raises(ConfigError, match="convention"):
        profile_model(one_conv(), (1, 3, 8, 8), bops_convention="loose")  # type: ignore[arg-type]
