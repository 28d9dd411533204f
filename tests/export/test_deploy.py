"""The deployment form: integer 1-bit convs (bit-equal sums), BatchNorm folding, packed and int8 ONNX files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from binas.cli.main import EXIT_USAGE, main
from binas.errors import CheckpointError
from binas.export import (
    IntegerConv2d,
    SignWeightConv2d,
    deploy,
    export_onnx,
    integer_conv,
    load_deployed,
    packed_sizes,
    save_packed,
)
from binas.export.signs import pack_signs, unpack_signs
from binas.export.verify import compare_outputs, integer_sums_equal
from binas.genotype import get_genotype
from binas.metrics.complexity import profile_model
from binas.nets.model_file import ModelSpec, save_model
from binas.quant.layers import QuantConv2d
from binas.quant.policy import BinarizationPolicy
from binas.storage.checkpoint import load_checkpoint, save_checkpoint

ENGINES = [e for e in integer_conv.ENGINES if integer_conv.engine_available(e)]


def trained_like(policy: BinarizationPolicy, *, family: str = "darts", channels: int = 4, seed: int = 0):
    """A small DARTS-V2 network with non-trivial BatchNorm statistics, in eval mode, and its spec."""
    torch.manual_seed(seed)
    spec = ModelSpec(
        get_genotype("darts-v2").to_dict(),
        10,
        3,
        channels,
        3,
        "cifar",
        family,
        ModelSpec.policy_dict(policy),
        False,
        "synthetic",
        8,
    )
    net = spec.build()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(16, 3, 8, 8))
        for m in net.modules():  # affine BatchNorms with non-trivial scales, some negative
            if isinstance(m, nn.BatchNorm2d) and m.affine:
                m.weight.uniform_(-1.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net.eval(), spec


POLICIES = ["strict", "released"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("family", ["darts", "dcp"])
@pytest.mark.parametrize("weights", ["mean_abs", "learned_scale"])
def test_deployed_network_computes_the_trained_one(engine, policy, family, weights):
    net, _ = trained_like(BinarizationPolicy.preset(policy, weight_quantizer=weights), family=family)
    deployed = deploy(net, engine=engine)
    binary_inputs = sum(m.binary_activations for m in net.modules() if isinstance(m, QuantConv2d))
    assert len(deployed.integer_convs()) == binary_inputs > 0
    assert not any(isinstance(m, QuantConv2d) for m in deployed.modules())
    x = torch.randn(32, 3, 8, 8)
    with torch.no_grad():
        ref, out = net(x), deployed(x)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert torch.equal(out.argmax(1), ref.argmax(1))


@pytest.mark.parametrize("engine", ENGINES)
def test_batchnorm_after_a_conv_is_folded(engine):
    net, _ = trained_like(BinarizationPolicy.strict())
    deployed = deploy(net, engine=engine)
    # darts family, strict: every BatchNorm follows a conv (or a FactorizedReduce), so none is left
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_real_network_deploys_as_folded_float_convs():
    net, _ = trained_like(BinarizationPolicy.real())
    deployed = deploy(net)
    assert not deployed.integer_convs() and not any(isinstance(m, SignWeightConv2d) for m in deployed.modules())
    x = torch.randn(8, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), net(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", POLICIES)
def test_integer_sums_are_bit_equal_layer_by_layer(engine, policy):
    net, _ = trained_like(BinarizationPolicy.preset(policy), channels=8)
    deployed = deploy(net, engine=engine)
    x = torch.randn(16, 3, 8, 8)
    x[0, :, :4] = 0.0  # exact zeros: sign(0) = +1 as in training
    checks = integer_sums_equal(net, deployed, x)
    assert len(checks) == len(deployed.integer_convs())
    assert all(c.sums > 0 and c.mismatches == 0 for c in checks), checks


def test_integer_sum_check_catches_a_wrong_kernel():
    net, _ = trained_like(BinarizationPolicy.strict())
    deployed = deploy(net, engine="reference")
    conv = next(iter(deployed.integer_convs().values()))
    conv.signs[0].neg_()  # one output channel with flipped weights
    checks = integer_sums_equal(net, deployed, torch.randn(4, 3, 8, 8))
    assert checks[0].mismatches > 0 and all(c.mismatches == 0 for c in checks[1:])


@pytest.mark.parametrize(
    "stride,padding,dilation,groups,size",
    [(1, 1, 1, 1, 7), (2, 1, 1, 1, 9), (1, 2, 2, 8, 8), (2, 2, 2, 8, 7), (1, 0, 1, 1, 5), (2, 1, 1, 8, 6)],
)
def test_integer_engines_agree_with_the_exact_sums(stride, padding, dilation, groups, size):
    torch.manual_seed(1)
    c = 8
    signs = torch.where(torch.randn(c, c // groups, 3, 3) >= 0, 1, -1).to(torch.int8)
    scale, shift = torch.rand(c) + 0.1, torch.randn(c)
    x = torch.randn(3, c, size, size)
    x[0, 0] = 0.0
    x[1, 1] = -0.0
    exact = nn.functional.conv2d(
        torch.where(x >= 0, 1.0, -1.0).double(), signs.double(), None, stride, padding, dilation, groups
    )
    for engine in ENGINES:
        conv = IntegerConv2d(signs, scale, shift, stride, padding, dilation, groups, engine=engine)
        assert torch.equal(conv.accumulate(x).double(), exact), engine
        expected = exact.float() * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
        torch.testing.assert_close(conv(x), expected, atol=1e-5, rtol=1e-6)


def test_signs_pack_and_unpack():
    signs = torch.where(torch.randn(5, 3, 3, 3) >= 0, 1, -1).to(torch.int8)
    packed = pack_signs(signs)
    assert packed.dtype == torch.uint8 and packed.numel() == (signs.numel() + 7) // 8
    assert torch.equal(unpack_signs(packed, tuple(signs.shape)), signs)


@pytest.mark.parametrize("policy", POLICIES)
def test_packed_file_loads_straight_into_the_deployment_form(tmp_path, policy):
    net, spec = trained_like(BinarizationPolicy.preset(policy, weight_quantizer="learned_scale"))
    save_packed(net, spec, tmp_path / "m.packed.pt")
    loaded, loaded_spec = load_deployed(tmp_path / "m.packed.pt", engine="reference")
    assert loaded_spec == spec
    direct = deploy(net, engine="reference")
    for (name, a), (_, b) in zip(loaded.named_buffers(), direct.named_buffers(), strict=True):
        assert torch.equal(a, b), name  # the same signs, scales and folded shifts, bit for bit
    x = torch.randn(6, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), direct(x))


def test_packed_file_is_within_a_tenth_of_the_estimate_plus_batchnorm(tmp_path):
    net, spec = trained_like(BinarizationPolicy.strict(), channels=16)
    sizes = save_packed(net, spec, tmp_path / "m.packed.pt")
    estimate = profile_model(net, spec.input_size).memory_mbit
    assert sizes.file_mbit <= 1.1 * (estimate + sizes.buffer_bits / 1e6)
    assert packed_sizes(tmp_path / "m.packed.pt") == sizes


def test_packed_file_errors_are_one_line(tmp_path):
    net, spec = trained_like(BinarizationPolicy.strict())
    path = save_packed(net, spec, tmp_path / "m.packed.pt") and tmp_path / "m.packed.pt"
    payload = load_checkpoint(path, kind="packed")
    truncated = {**payload, "bits": payload["bits"][:-3]}
    save_checkpoint(tmp_path / "truncated.pt", truncated, kind="packed")
    with pytest.raises(CheckpointError, match="does not fill its layout"):
        load_deployed(tmp_path / "truncated.pt")
    other = {**payload, "spec": {**payload["spec"], "channels": 8}}
    save_checkpoint(tmp_path / "other.pt", other, kind="packed")
    with pytest.raises(CheckpointError, match="do not fit the network"):
        load_deployed(tmp_path / "other.pt")
    old = {k: v for k, v in payload.items() if k not in ("format", "layout")} | {"index": []}
    save_checkpoint(tmp_path / "old.pt", old, kind="packed")
    with pytest.raises(CheckpointError, match="format 1"):
        load_deployed(tmp_path / "old.pt")


@pytest.mark.parametrize("policy", POLICIES)
def test_int8_onnx_runs_integer_convs_in_onnxruntime(tmp_path, policy):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from binas.export.verify import onnx_runner

    net, _ = trained_like(BinarizationPolicy.preset(policy), channels=16)
    path = export_onnx(net, tmp_path / "m.int8.onnx", (1, 3, 8, 8), form="int8")
    float_path = export_onnx(net, tmp_path / "m.onnx", (1, 3, 8, 8))
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    deployed = deploy(net, engine="reference")
    assert ops.count("ConvInteger") == len(deployed.integer_convs())
    sign_weight = sum(isinstance(m, SignWeightConv2d) for m in deployed.modules())
    assert ops.count("DequantizeLinear") == sign_weight
    assert ops.count("Conv") == sign_weight + sum(type(m) is nn.Conv2d for m in deployed.modules())
    assert path.stat().st_size * 2 < float_path.stat().st_size  # 1 bit per binary weight (plus the reals)
    for size in (8, 13):  # batch and spatial size are free: the graph was traced at 1x3x8x8
        x = torch.randn(20, 3, size, size)
        agreement = compare_outputs(net, onnx_runner(str(path)), [(x, torch.zeros(20, dtype=torch.long))])
        assert agreement.agreement_pct == 100.0 and agreement.max_abs_logit_diff < 1e-4


def _tiny_run(tmp_path, policy: str = "strict"):
    net, spec = trained_like(BinarizationPolicy.preset(policy))
    run = tmp_path / "run"
    save_model(run / "model.pt", spec, net)
    return run, net


def test_deploy_cli_writes_checked_files(tmp_path, capsys):
    run, _ = _tiny_run(tmp_path)
    code = main(["deploy", str(run), "--repeats", "2", "--batch-size", "64", "--json", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)
    for name in ("model.packed.pt", "model.int8.onnx", "deploy.json"):
        assert (run / "deploy" / name).is_file()
    assert json.loads((run / "deploy" / "deploy.json").read_text()) == report
    checks = report["checks"]
    assert checks["integer_convs"] > 0 and checks["integer_sum_mismatches"] == 0
    assert checks["deployed_vs_trained"]["agreement_pct"] == 100.0
    assert checks["deployed_vs_trained"]["images"] > 0
    assert report["sizes"]["onnx_int8_bytes"] > 0 and report["sizes"]["packed_over_estimate_plus_bn"] > 0
    assert [row["batch"] for row in report["latency"]] == [1, 64]
    if "onnx_vs_trained" in checks:
        assert checks["onnx_vs_trained"]["agreement_pct"] == 100.0
    # the packed file it wrote deploys again (a packed file is accepted as the input)
    code = main(["deploy", str(run / "deploy" / "model.packed.pt"), "--out", str(tmp_path / "again"), "--no-timing"])
    assert code == 0 and "same prediction on 100.00 %" in capsys.readouterr().out


def test_deploy_cli_bad_inputs_are_one_line_errors(tmp_path, capsys):
    code = main(["deploy", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and len(err.strip().splitlines()) == 1
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    code = main(["deploy", str(tmp_path / "junk.pt")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and len(err.strip().splitlines()) == 1 and "junk.pt" in err
    with pytest.raises(SystemExit) as done:  # argparse's own usage error
        main(["deploy", str(tmp_path / "junk.pt"), "--repeats", "0"])
    assert done.value.code == EXIT_USAGE and "expected a positive integer, got 0" in capsys.readouterr().err


def test_deployed_agreement_on_a_data_set_counts_images():
    net, _ = trained_like(BinarizationPolicy.strict())
    deployed = deploy(net)
    batches = [(torch.randn(5, 3, 8, 8), torch.arange(5)), (torch.randn(3, 3, 8, 8), torch.arange(3))]
    agreement = compare_outputs(net, deployed, batches)
    assert agreement.images == 8 and agreement.agreement_pct == 100.0
    assert np.isclose(agreement.top1_reference, agreement.top1_candidate)


def test_deploy_is_part_of_the_public_api():
    import binas
    from binas.export import deploy as library_deploy
    from binas.workflows.deploy import deploy_model

    assert binas.deploy is library_deploy and binas.deploy_model is deploy_model
    assert binas.load_deployed is load_deployed


def test_export_cli_writes_the_int8_onnx_graph(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    run, _ = _tiny_run(tmp_path)
    code = main(["export", str(run), "--format", "onnx-int8", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["file"].endswith("model.int8.onnx")
    ops = {n.op_type for n in onnx.load(report["file"]).graph.node}
    assert "ConvInteger" in ops


@pytest.mark.parametrize("engine", ENGINES)
def test_chained_1bit_convs_pass_signs_and_compute_the_same(engine):
    net, _ = trained_like(BinarizationPolicy.strict())
    fused, plain = deploy(net, engine=engine), deploy(net, engine=engine, fuse_signs=False)
    assert sum(c.sign_output for c in fused.integer_convs().values()) > 0
    assert not any(c.sign_output for c in plain.integer_convs().values())
    x = torch.randn(16, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), plain(x), atol=1e-4, rtol=1e-4)


def test_sign_threshold_matches_the_sign_of_the_affine_value_for_every_sum():
    from binas.export.integer_conv import sign_threshold

    fan_in = 9
    scale = torch.tensor([0.5, -0.25, 0.0, 0.0, 1e-9, -2.0])
    shift = torch.tensor([0.3, 0.6, 0.1, -0.1, 5.0, 4.0])  # incl. constant signs and a threshold beyond fan_in
    flip, weight, bias = sign_threshold(scale, shift, fan_in)
    acc = torch.arange(-fan_in, fan_in + 1, dtype=torch.float64).reshape(-1, 1)
    expected = torch.where(acc * scale.double() + shift.double() >= 0, 1.0, -1.0)
    value = weight.double() * (flip.double() * acc) + bias.double()
    assert torch.all(value != 0) and torch.equal(torch.where(value > 0, 1.0, -1.0), expected)
