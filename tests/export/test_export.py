"""Inference copy, packed 1-bit file and ONNX graph of a trained network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from binas.errors import CheckpointError
from binas.export import BinarySign, export_onnx, load_packed, save_packed, to_inference
from binas.genotype import get_genotype
from binas.metrics.complexity import profile_model
from binas.nets import Network
from binas.nets.model_file import ModelSpec, load_model, save_model
from binas.quant.functional import hard_sign, mean_abs_scale, scaled_sign_ste
from binas.quant.layers import QuantConv2d, quant_convs
from binas.quant.policy import BinarizationPolicy


def test_mean_abs_forward_is_exactly_beta_sign():
    """The mean-|W| binarizer's forward must equal beta * sign(W) bit for bit (packing relies on it)."""
    w = torch.randn(64, 8, 3, 3)
    assert torch.equal(scaled_sign_ste(w), mean_abs_scale(w) * hard_sign(w))


def trained_like(policy: BinarizationPolicy, seed: int = 0) -> tuple[Network, ModelSpec]:
    """A tiny network with non-trivial BatchNorm statistics (a few train-mode passes), in eval mode."""
    torch.manual_seed(seed)
    spec = ModelSpec(
        get_genotype("darts-v2").to_dict(),
        10,
        3,
        4,
        3,
        "cifar",
        "darts",
        ModelSpec.policy_dict(policy),
        False,
        "synthetic",
        8,
    )
    net = spec.build()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(16, 3, 8, 8))
    return net.eval(), spec


@pytest.mark.parametrize("policy", ["released", "strict"])
@pytest.mark.parametrize("weights", ["mean_abs", "learned_scale"])
def test_inference_copy_is_exact(policy, weights):
    net, _ = trained_like(BinarizationPolicy.preset(policy, weight_quantizer=weights))
    copy = to_inference(net)
    assert not any(isinstance(m, QuantConv2d) for m in copy.modules())
    assert sum(isinstance(m, BinarySign) for m in copy.modules()) == sum(
        c.binary_activations for c in net.modules() if isinstance(c, QuantConv2d)
    )
    x = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(copy(x), net(x))


@pytest.mark.parametrize("weights", ["learned_scale", "mean_abs"])
def test_packed_round_trip_is_exact(tmp_path, weights):
    net, spec = trained_like(BinarizationPolicy.preset("strict", weight_quantizer=weights))
    save_model(tmp_path / "model.pt", spec, net)
    trained, _, _ = load_model(tmp_path / "model.pt")
    save_packed(trained, spec, tmp_path / "model.packed.pt")
    packed, packed_spec = load_packed(tmp_path / "model.packed.pt")
    assert packed_spec == spec
    x = torch.randn(7, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(packed(x), trained(x))


def test_packed_round_trip_is_close_for_every_binarizer(tmp_path):
    net, spec = trained_like(BinarizationPolicy.preset("released"), seed=1)
    save_packed(net, spec, tmp_path / "p.pt")
    packed, _ = load_packed(tmp_path / "p.pt")
    for name, conv in ((n, m) for n, m in net.named_modules() if isinstance(m, QuantConv2d) and m.binary_weights):
        plain = dict(packed.named_modules())[name]
        plain = plain[1] if isinstance(plain, torch.nn.Sequential) else plain
        assert torch.allclose(plain.weight, conv.quantized_weight(), atol=1e-7, rtol=0)


def test_packed_sizes_match_the_memory_estimate(tmp_path):
    net, spec = trained_like(BinarizationPolicy.preset("released"))
    sizes = save_packed(net, spec, tmp_path / "p.pt")
    n_binary = sum(c.weight.numel() for c in quant_convs(net))
    assert sizes.binary_weight_bits == n_binary and 0 <= sizes.padding_bits < 8 * len(quant_convs(net))
    assert sizes.estimate_mbit == pytest.approx(profile_model(net, (1, 3, 8, 8)).memory_mbit)
    assert sizes.buffer_bits > 0 and sizes.file_bytes == (tmp_path / "p.pt").stat().st_size
    bits = torch.load(tmp_path / "p.pt", weights_only=True)["payload"]["bits"]
    assert bits.dtype == torch.uint8 and bits.numel() * 8 == n_binary + sizes.padding_bits


def test_load_packed_rejects_other_files(tmp_path):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a binas checkpoint"):
        load_packed(tmp_path / "foreign.pt")
    net, spec = trained_like(BinarizationPolicy.released())
    save_model(tmp_path / "model.pt", spec, net)
    with pytest.raises(CheckpointError, match="expected a 'packed' checkpoint"):
        load_packed(tmp_path / "model.pt")


def _constant_magnitude_per_channel(w: np.ndarray) -> bool:
    mags = np.abs(w.reshape(w.shape[0], -1))
    return bool(np.allclose(mags, mags[:, :1], rtol=1e-6, atol=0))


def test_onnx_graph_has_sign_ops_and_folded_binary_weights(tmp_path):
    onnx = pytest.importorskip("onnx")
    net, _ = trained_like(BinarizationPolicy.strict())
    path = export_onnx(net, tmp_path / "m.onnx", (1, 3, 8, 8))
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    signs = sum(c.binary_activations for c in quant_convs(net))
    # one GreaterOrEqual + Where per binarized input (the exporter merges two signs of the same tensor)
    assert 0 < ops.count("Where") == ops.count("GreaterOrEqual") <= signs and "Sign" not in ops
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    conv_weights = [inits[n.input[1]] for n in model.graph.node if n.op_type == "Conv" and n.input[1] in inits]
    binary = [w for w in conv_weights if _constant_magnitude_per_channel(w)]
    assert len(binary) >= len(quant_convs(net))  # every cell conv: +-beta per output channel (BN may be folded in)


def test_onnx_graph_computes_the_network(tmp_path):
    """On a real-valued network (no sign ties to break differently) onnx's reference runtime agrees."""
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    net, _ = trained_like(BinarizationPolicy.real())
    path = export_onnx(net, tmp_path / "m.onnx", (1, 3, 8, 8))
    x = torch.randn(3, 3, 8, 8)  # a batch of 3 through a graph traced with batch 1: the batch axis is dynamic
    out = ReferenceEvaluator(onnx.load(str(path))).run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, net(x).numpy(), atol=1e-4)


@pytest.mark.parametrize(("policy", "weights"), [("strict", "mean_abs"), ("released", "learned_scale")])
def test_onnx_file_runs_in_onnxruntime_like_the_trained_network(tmp_path, policy, weights):
    """A saved 1-bit network, reloaded and exported, gives the eval-mode PyTorch logits in onnxruntime.

    float32 in both: a pre-sign value within rounding of 0 could flip one sign and break the tolerance; the
    seeds are fixed and flip none (onnxruntime's CPU Conv has no float64 kernel to rule it out)."""
    ort = pytest.importorskip("onnxruntime")
    net, spec = trained_like(BinarizationPolicy.preset(policy, weight_quantizer=weights), seed=2)
    save_model(tmp_path / "model.pt", spec, net)
    trained, _, _ = load_model(tmp_path / "model.pt")
    trained.eval()
    path = export_onnx(trained, tmp_path / "m.onnx", (1, 3, 8, 8))
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"] and session.get_inputs()[0].shape[0] == "batch"

    torch.manual_seed(3)
    x = torch.randn(16, 3, 8, 8)  # batch 16 through a graph traced with batch 1
    with torch.no_grad():
        expected = trained(x)

    (logits,) = session.run(None, {"images": x.numpy()})
    got = torch.from_numpy(logits)
    assert got.shape == (16, 10)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(got.argmax(1), expected.argmax(1))  # top-1 agreement: 16/16
