"""Hand-designed 1-bit reference networks (Bi-Real Net-18, ReActNet-A): structure, published complexity,
model files, deployment, training from the CLI and the backbone contract."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import binas
from binas.cli.main import main
from binas.errors import ConfigError, RegistryError
from binas.export import deploy
from binas.export.integer_conv import onednn_available
from binas.metrics.complexity import profile_model
from binas.nets.backbone import ReferenceBackbone, backbone_from_checkpoint
from binas.nets.birealnet import BiRealNet18
from binas.nets.model_file import ModelSpec, load_model, save_model
from binas.nets.reactnet import ReActNetA
from binas.nets.reference import REFERENCE_NETWORKS, build_reference
from binas.quant.layers import QuantConv2d
from binas.quant.policy import BinarizationPolicy

NAMES = ["birealnet18", "reactnet-a"]
STRICT = BinarizationPolicy.strict()
ENGINES = ["reference", *(["onednn"] if onednn_available() else [])]

#: Published ImageNet (224 x 224) complexity, (BOPs, FLOPs, OPs).
#: - BOPs and FLOPs: the papers' comparison tables (Bi-Real Net, Liu et al., ECCV 2018: 1.68e9 / 1.39e8;
#:   ReActNet, Liu et al., ECCV 2020: 4.82e9 BOPs, 0.12e8 FLOPs), as quoted in issue 17; the tables
#:   themselves were not in the searchable corpus (ReActNet's are consistent: 4.82e9 / 64 + 0.12e8 = 0.87e8).
#: - OPs: also the authors' README, liuzechun/ReActNet `README.md`, "Models" table, whose "FLOPs" column
#:   is OPs = BOPs / 64 + FLOPs: "Bi-Real Net | 56.4% | 1.63 x 10^8", "ReActNet-A | 69.5% | 0.87 x 10^8".
PUBLISHED = {
    "birealnet18": (1.68e9, 1.39e8, 1.63e8),
    "reactnet-a": (4.82e9, 0.12e8, 0.87e8),
}
#: Relative tolerances (BOPs, FLOPs, OPs), justified per number:
#: - BOPs: the 3x3 binary convs only, the same count in binas and the papers; binas gives 1.676e9 and
#:   4.817e9, within the rounding of the published 3 digits (0.3 %, 0.1 %): 0.5 %.
#: - FLOPs: binas counts convs and linears only (stem, Bi-Real's three real 1x1 downsampling convs, FC),
#:   not BN, pooling or the shortcut additions. Bi-Real: 1.378e8 vs 1.39e8 (-0.9 %; the paper's extra
#:   ~1.2e6 is about the size of the shortcut additions, 1.5e6, so it likely counts some element-wise ops);
#:   ReActNet-A: 1.186e7 vs 0.12e8, which is given to 2 digits (+-4 %): 1.2 % below. Tolerance 1.5 % / 4 %.
#: - OPs: Bi-Real's published 1.63e8 is 1.3 % below its own BOPs / 64 + FLOPs (1.65e8); binas's 1.640e8
#:   is 0.6 % above it. ReActNet-A: 8.71e7 vs 0.87e8 (+0.1 %, 2 digits). Tolerance 1 %.
TOLERANCE = {"birealnet18": (0.005, 0.015, 0.01), "reactnet-a": (0.005, 0.04, 0.01)}


def tiny(name: str, policy: BinarizationPolicy = STRICT, **kw) -> nn.Module:
    return build_reference(name, num_classes=10, channels=4, stem=kw.pop("stem", "cifar"), policy=policy, **kw)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("stem", ["cifar", "small", "imagenet"])
def test_forward_shapes(name, stem):
    net = tiny(name, stem=stem)
    size = 64 if stem == "imagenet" else 16
    out = net.forward_all(torch.randn(2, 3, size, size))
    assert out.logits.shape == (2, 10) and out.aux_logits is None
    assert out.features.shape[:2] == (2, net.stage_channels[-1])
    assert out.features.shape[-1] == max(1, -(-size // net.stage_strides[-1]))


@pytest.mark.parametrize("name", NAMES)
def test_odd_and_tiny_inputs_keep_shortcuts_aligned(name):
    """A stride-2 block's pooled shortcut has the conv's ceil(H / 2) size on odd maps and on 1x1 maps."""
    net = tiny(name).eval()
    for size in (7, 8, 13):
        assert net(torch.randn(1, 3, size, size)).shape == (1, 10)


def _convs(net: nn.Module) -> tuple[list[QuantConv2d], list[nn.Conv2d]]:
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    binary = [m for m in convs if isinstance(m, QuantConv2d) and m.binary_weights and m.binary_activations]
    return binary, [m for m in convs if m not in binary]


@pytest.mark.parametrize("policy", ["strict", "released"])
def test_birealnet_binarizes_every_3x3_conv_as_published(policy):
    """16 binary 3x3 convs (ResNet-18's 8 basic blocks, one shortcut per conv); real: the 7x7 stem and the
    three 1x1 downsampling convs; each binary conv directly followed by its BatchNorm."""
    net = BiRealNet18(num_classes=10, channels=4, policy=BinarizationPolicy.preset(policy))
    binary, real = _convs(net)
    assert len(binary) == 16 and {m.kernel_size for m in binary} == {(3, 3)}
    assert sorted(m.kernel_size for m in real) == [(1, 1)] * 3 + [(7, 7)]
    assert all(
        isinstance(seq[0], QuantConv2d) and isinstance(seq[1], nn.BatchNorm2d)
        for seq in (b.body for stage in net.stages for b in stage)
    )
    assert BiRealNet18.blocks == 16


def test_reactnet_binarizes_3x3_and_1x1_convs_as_published():
    """13 full (not depth-wise) binary 3x3 convs and 13 + 5 binary 1x1 convs (the five channel-doubling
    blocks have two); only the stem conv is real; RSign shifts sit in front of the convs."""
    net = ReActNetA(num_classes=10, channels=4, policy=STRICT)
    binary, real = _convs(net)
    kernels = [m.kernel_size for m in binary]
    assert kernels.count((3, 3)) == 13 and kernels.count((1, 1)) == 18 and len(binary) == 31
    assert all(m.groups == 1 for m in binary)
    assert [m.kernel_size for m in real] == [(3, 3)] and real[0] is net.stem[0]
    assert sum(isinstance(m, nn.PReLU) for m in net.modules()) == 26  # RPReLU after each conv's shortcut
    assert net.stage_channels == [4 * 4, 4 * 8, 4 * 16, 4 * 32]


@pytest.mark.parametrize("name", NAMES)
def test_real_and_step1_policies(name):
    real = tiny(name, BinarizationPolicy.real())
    assert not any(isinstance(m, QuantConv2d) and (m.binary_weights or m.binary_activations) for m in real.modules())
    step1 = tiny(name, STRICT.activations_only())
    quant = [m for m in step1.modules() if isinstance(m, QuantConv2d)]
    assert quant and all(m.binary_activations and not m.binary_weights for m in quant)


@pytest.mark.parametrize("name", NAMES)
def test_imagenet_complexity_matches_the_published_numbers(name):
    net = build_reference(name, num_classes=1000, policy=STRICT)
    prof = profile_model(net, (1, 3, 224, 224), bops_convention="strict")
    for got, published, tol in zip((prof.bops, prof.flops, prof.ops), PUBLISHED[name], TOLERANCE[name]):
        assert got == pytest.approx(published, rel=tol)
    # every binary-weight conv has binary activations, so the lenient convention counts the same BOPs
    assert profile_model(net, (1, 3, 224, 224), bops_convention="lenient").bops == prof.bops


@pytest.mark.parametrize("name", NAMES)
def test_profile_cli_by_name(name, capsys):
    assert main(["profile", name, "--dataset", "imagenet", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["bops"] == pytest.approx(PUBLISHED[name][0], rel=TOLERANCE[name][0])


def test_birealnet_params_and_memory():
    """ResNet-18's 11.69 M parameters (its convs, FC and BN; Bi-Real adds none); memory 33.6 Mbit: Bi-Real
    Net's memory-usage comparison reports 33.6 Mbit for Bi-Real Net-18 (quoted, not found in the corpus)."""
    prof = profile_model(build_reference("birealnet18", num_classes=1000, policy=STRICT), (1, 3, 224, 224))
    assert prof.params == 11_689_512
    assert prof.memory_mbit == pytest.approx(33.6, abs=0.05)


@pytest.mark.parametrize("name", NAMES)
def test_model_file_round_trip(name, tmp_path):
    spec = ModelSpec({}, 10, 3, 4, REFERENCE_NETWORKS.get(name).blocks, "cifar", "darts",
                     ModelSpec.policy_dict(STRICT), False, "digits", 16, arch=name)  # fmt: skip
    net = spec.build().eval()
    path = save_model(tmp_path / "model.pt", spec, net)
    loaded, spec2, _ = load_model(path)
    assert spec2 == spec and type(loaded) is type(net)
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    assert name in spec.describe()


def test_old_model_specs_without_arch_still_load():
    data = ModelSpec({}, 10, 3, 4, 3, "cifar", "darts", ModelSpec.policy_dict(STRICT), False, "digits", 8).to_dict()
    del data["arch"]
    assert ModelSpec.from_dict(data).arch is None


def _with_statistics(net: nn.Module, size: int) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, RSign/RPReLU shifts and PReLU slopes."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 4 and p.shape[0] == 1:  # LearnableBias
                p.uniform_(-0.3, 0.3)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(-1.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
        net.train()
        for _ in range(3):
            net(torch.randn(16, 3, size, size))
    return net.eval()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", NAMES)
def test_deployed_network_computes_the_trained_one(name, engine):
    net = _with_statistics(tiny(name), 16)
    deployed = deploy(net, engine=engine)
    binary, _ = _convs(net)
    assert len(deployed.integer_convs()) == len(binary)
    assert not any(isinstance(m, (QuantConv2d, nn.BatchNorm2d)) for m in deployed.modules())  # all folded
    x = torch.randn(32, 3, 16, 16)
    with torch.no_grad():
        ref, out = net(x), deployed(x)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert torch.equal(out.argmax(1), ref.argmax(1))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("stem", "strides"), [("imagenet", [8, 16, 32]), ("small", None), ("cifar", None)])
def test_backbone_contract(name, stem, strides):
    net = binas.backbone(name, channels=4, stem=stem)
    assert isinstance(net, ReferenceBackbone) and len(net.strides) == 3 == len(net.out_channels)
    if strides is not None:
        assert net.strides == strides
    expected = {
        ("birealnet18", "small"): [4, 8, 16],
        ("birealnet18", "cifar"): [2, 4, 8],
        ("reactnet-a", "small"): [8, 16, 32],
        ("reactnet-a", "cifar"): [4, 8, 16],
    }.get((name, stem))
    if expected is not None:
        assert net.strides == expected
    feats = net(torch.randn(2, 3, 64, 64))
    assert list(feats) == ["0", "1", "2"]
    for f, c, s in zip(feats.values(), net.out_channels, net.strides):
        assert f.shape == (2, c, 64 // s, 64 // s)
    assert not any(isinstance(m, nn.Linear) for m in net.modules())


def test_backbone_published_width_and_errors():
    assert binas.backbone("birealnet18").out_channels == [128, 256, 512]
    assert binas.backbone("reactnet-a").out_channels == [256, 512, 1024]
    with pytest.raises(ConfigError, match="stem"):
        binas.backbone("birealnet18", stem="vit")
    with pytest.raises(RegistryError, match="birealnet18"):
        build_reference("resnet18", num_classes=10)


def test_train_cli_eval_profile_and_backbone(tmp_path, capsys):
    """`binas train birealnet18` on digits (1 epoch, width 4, 8x8) writes a model file that eval, profile
    and `backbone_from_checkpoint` read; no genotype.json."""
    out = tmp_path / "run"
    argv = ["train", "birealnet18", "--dataset", "digits", "--out", str(out), "--device", "cpu", "--quiet",
            "--set", "data.image_size=8", "--set", "data.max_train_samples=64", "--set", "num_threads=1",
            "--set", "train.epochs=1", "--set", "train.two_step=false", "--set", "train.net.channels=4",
            "--set", "train.batch_size=32", "--set", "train.optim.warmup_epochs=0"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "birealnet18, width 4, cifar stem" in printed
    assert (out / "model.pt").is_file() and not (out / "genotype.json").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["network"]["arch"] == "birealnet18" and summary["bops"] > 0
    assert main(["eval", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bops"] == summary["bops"]
    assert main(["profile", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bops"] == summary["bops"]
    assert backbone_from_checkpoint(out).strides == [2, 4, 8]


def test_reference_name_with_a_genotype_setting_is_an_error(tmp_path):
    from binas.config.schema import RunConfig
    from binas.workflows.train import resolve_network

    cfg = resolve_network(RunConfig(), "reactnet-a")
    assert cfg.train.net.arch == "reactnet-a"
    with pytest.raises(ConfigError, match="no genotype"):
        resolve_network(cfg, "darts-v2")
