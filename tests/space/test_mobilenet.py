"""The MobileNetV2-style space: layout, candidates, binarization, single-path supernet, derived networks."""

from __future__ import annotations

import pytest
import torch

from binas.config.io import from_dict
from binas.config.schema import RunConfig
from binas.errors import ConfigError, GenotypeError, ShapeError
from binas.genotype.mobilenet import MobileGenotype
from binas.nets.mobilenet import MobileNetwork
from binas.quant.layers import QuantConv2d
from binas.quant.policy import BinarizationPolicy
from binas.space.mobilenet import (
    NO_SKIP_OP,
    PROXYLESS_WIDTHS,
    ZERO,
    MobileNetConfig,
    MobileSupernet,
    block_candidates,
    block_specs,
    make_divisible,
)

TINY = MobileNetConfig(width_mult=0.25, depth=1)


def test_reference_layout_has_21_searchable_blocks_of_seven_candidates():
    cfg = MobileNetConfig(width_mult=1.0, depth=4, stem_stride=2)
    specs = block_specs(cfg)
    assert len(specs) == 5 * 4 + 1  # spec §1.1: depth 4 per stage, 1 block in the last stage
    assert [s.c_out for s in specs[::4]][:5] == [24, 40, 80, 96, 192] and specs[-1].c_out == 320
    assert [s.stride for s in specs[::4]][:5] == [2, 2, 2, 1, 2]
    for s in specs:
        cands = block_candidates(cfg, s)
        assert len(cands) == 7 and cands[:6] == ((3, 3), (3, 6), (5, 3), (5, 6), (7, 3), (7, 6))
        assert cands[6] == (ZERO if s.skippable else NO_SKIP_OP)
    assert sum(s.skippable for s in specs) == 15  # every block but the first of each stage
    assert [make_divisible(w * 1.0) for w in PROXYLESS_WIDTHS] == list(PROXYLESS_WIDTHS)
    assert make_divisible(40 * 0.25) == 16  # rounding down to 8 would lose more than 10 %


@pytest.mark.parametrize("policy", ["real", "released", "strict"])
def test_single_path_forward_runs_only_the_sampled_ops(policy):
    torch.manual_seed(0)
    pol = BinarizationPolicy.preset(policy)
    net = MobileSupernet(TINY, num_classes=10, policy=pol)
    x = torch.randn(2, 3, 8, 8)
    calls = []
    for b, block in enumerate(net.blocks):
        for k, op in enumerate(block.ops):
            op.register_forward_hook(lambda m, i, o, b=b, k=k: calls.append((b, k)))
    sample = torch.tensor([k % 7 for k in range(net.num_blocks)])
    out = net(x, sample)
    assert out.shape == (2, 10)
    ran = {(b, int(k)) for b, k in enumerate(sample.tolist()) if net.blocks[b].candidates[int(k)] != ZERO}
    assert set(calls) == ran
    out.sum().backward()
    with pytest.raises(ShapeError):
        net(x, sample[:-1])


def test_zero_op_skips_the_block():
    net = MobileSupernet(TINY, num_classes=10).eval()
    b = next(i for i, blk in enumerate(net.blocks) if blk.spec.skippable)
    x = torch.randn(1, net.blocks[b].spec.c_in, 4, 4)
    assert torch.equal(net.blocks[b](x, 6), x)


@pytest.mark.parametrize(
    "policy, weights, acts",
    [
        ("released", {"pw": True, "dw": True}, {"pw": True, "dw": False}),
        ("strict", {"pw": True, "dw": True}, {"pw": True, "dw": True}),
        ("real", {"pw": False, "dw": False}, {"pw": False, "dw": False}),
    ],
)
def test_binarization_of_block_convs_and_real_stem_and_head(policy, weights, acts):
    net = MobileSupernet(TINY, num_classes=10, policy=BinarizationPolicy.preset(policy))
    for block in [net.first_block.body, *[op for blk in net.blocks for op in blk.ops]]:
        for conv in (m for m in block.modules() if isinstance(m, QuantConv2d)):
            role = "dw" if conv.groups > 1 else "pw"
            assert conv.binary_weights == weights[role] and conv.binary_activations == acts[role]
    for part in (net.stem, net.head):
        assert not any(isinstance(m, QuantConv2d) and m.binary_weights for m in part.modules())
    if acts["dw"]:  # no ReLU6 in front of a binarized input: sign(ReLU6(x)) would be constant
        op = net.blocks[0].ops[1].body
        assert not any(
            isinstance(op[i], torch.nn.ReLU6) and isinstance(op[i + 1], QuantConv2d) for i in range(len(op) - 1)
        )


def test_network_from_genotype_matches_the_supernet_path():
    torch.manual_seed(0)
    net = MobileSupernet(TINY, num_classes=10).eval()
    indices = [0, 6, 3, 6, 5, 2]
    genotype = MobileGenotype.from_indices(net.candidates(), indices)
    assert genotype.blocks[1] == NO_SKIP_OP and genotype.blocks[3] == ZERO
    derived = MobileNetwork(genotype, TINY, num_classes=10).eval()
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("blocks.")}
    for b, k in enumerate(indices):
        body = net.blocks[b].ops[k]
        if genotype.blocks[b] != ZERO:
            state |= {f"blocks.{b}.body.{n}": v for n, v in body.state_dict().items()}
    derived.load_state_dict(state)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(derived(x), net(x, torch.tensor(indices)), atol=1e-6)


def test_genotype_must_fit_the_space():
    with pytest.raises(GenotypeError, match="blocks"):
        MobileNetwork(MobileGenotype(((3, 3),)), TINY, num_classes=10)
    blocks = [(3, 3)] * 6
    blocks[0] = ZERO  # block 0 changes stride and width: it cannot be skipped
    with pytest.raises(GenotypeError, match="cannot be skipped"):
        MobileNetwork(MobileGenotype(tuple(blocks)), TINY, num_classes=10)


def test_space_config_from_yaml_keys_and_bad_values():
    cfg = from_dict(RunConfig, {"space": {"kind": "mobilenet", "mobilenet": {"width_mult": 0.5, "depth": 3}}})
    assert cfg.space.kind == "mobilenet" and cfg.space.mobilenet.depth == 3
    with pytest.raises(ConfigError, match="space.mobilenet"):
        from_dict(RunConfig, {"space": {"mobilenet": {"depth": 0}}})
    with pytest.raises(ConfigError, match="space.kind"):
        from_dict(RunConfig, {"space": {"kind": "nasbench"}})


@pytest.mark.parametrize("c_in, c_out, stride", [(8, 24, 1), (24, 8, 2), (16, 16, 2), (16, 16, 1)])
def test_channel_shortcut_matches_the_conv_output(c_in, c_out, stride):
    from binas.space.mobilenet_ops import BinaryConvBN

    unit = BinaryConvBN(BinarizationPolicy.strict().spec("pointwise"), c_in, c_out, 3, stride)
    x = torch.randn(2, c_in, 7, 7)
    assert unit(x).shape == (2, c_out, 4 if stride == 2 else 7, 4 if stride == 2 else 7)
    assert sum(p.numel() for p in unit.shortcut.parameters()) == 0


def test_binary_mbconv_has_real_shortcuts_and_no_relu6():
    from binas.space.mobilenet_ops import MBConv

    binary = MBConv(16, 24, 5, 3, 2, BinarizationPolicy.released())
    assert binary.binary and not any(isinstance(m, torch.nn.ReLU6) for m in binary.modules())
    assert [u.shortcut is not None for u in binary.body] == [True, True, True]  # 16->48, 48->48 s2, 48->24
    real = MBConv(16, 24, 5, 3, 2, BinarizationPolicy.real())
    assert not real.binary and sum(isinstance(m, torch.nn.ReLU6) for m in real.modules()) == 2
    assert sum(p.numel() for p in binary.parameters()) == sum(p.numel() for p in real.parameters())
