"""Deployed cells: shared parameter-free ops, in-place node sums and sign bits between cells change no value."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from binas.export import deploy, export_onnx, native
from binas.export.deployed_cell import DeployedCell, NativeMaxPool2d
from binas.quant.policy import BinarizationPolicy
from tests.export.test_deploy import trained_like

needs_native = pytest.mark.skipif(not native.available(), reason="native kernels not built on this machine")


def _calls(modules: list[nn.Module]) -> list[int]:
    count = [0]
    for m in modules:
        m.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
    return count


def test_a_pool_applied_to_the_same_state_twice_runs_once():
    net, _ = trained_like(BinarizationPolicy.strict())
    deployed = deploy(net, engine="reference")
    cell, trained_cell = deployed.net.cells[1], net.cells[1]  # a reduction cell: DARTS-V2 pools s0 and s1
    assert isinstance(cell, DeployedCell) and cell.reduction
    pools = _calls([m for m in cell.modules() if isinstance(m, nn.MaxPool2d)])
    trained_pools = _calls([m for m in trained_cell.modules() if isinstance(m, nn.MaxPool2d)])
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), net(x), atol=1e-4, rtol=1e-4)
    assert trained_pools[0] == 5 and pools[0] == 2  # max_pool_3x3 on inputs 0, 1, 1, 0, 1


@needs_native
def test_cells_pass_the_sign_bits_of_their_concatenation_to_1bit_preprocessing():
    net, _ = trained_like(BinarizationPolicy.strict(), channels=8)
    deployed = deploy(net, engine="native")
    routed = [c.output_bits for c in deployed.net.cells]
    assert routed == [True, True, False]  # the last cell's output is pooled for the classifier
    x = torch.randn(6, 3, 8, 8)
    with torch.no_grad():
        s0, s1 = net.stem(x)
        d0, d1 = deployed.net.stem(x.contiguous(memory_format=torch.channels_last))
        trained_out = net.cells[0](s0, s1)
        bits = deployed.net.cells[0](d0, d1)
        assert bits.dtype == native.BITS_DTYPE
        assert torch.equal(native.unpack_bits(bits, trained_out.shape[1]), torch.where(trained_out >= 0, 1.0, -1.0))
        torch.testing.assert_close(deployed(x), net(x), atol=1e-4, rtol=1e-4)


@needs_native
@pytest.mark.parametrize(
    "policy,family", [("released", "darts"), ("strict", "dcp")], ids=["real-input preprocessing", "BN first"]
)
def test_no_bits_go_to_a_consumer_that_needs_floats(policy, family):
    net, _ = trained_like(BinarizationPolicy.preset(policy), family=family)
    deployed = deploy(net, engine="native")
    assert not any(c.output_bits for c in deployed.net.cells)
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), net(x), atol=1e-4, rtol=1e-4)


@needs_native
def test_native_max_pool_equals_pytorch_including_nan():
    net, _ = trained_like(BinarizationPolicy.strict())
    deployed = deploy(net, engine="native")
    pool = next(m for m in deployed.modules() if isinstance(m, NativeMaxPool2d))
    x = torch.randn(3, 8, 9, 9).contiguous(memory_format=torch.channels_last)
    x[0, 0, 4, 4] = float("nan")
    got, want = pool(x), nn.functional.max_pool2d(x, pool.kernel_size, pool.stride, pool.padding)
    assert torch.equal(got.isnan(), want.isnan()) and torch.equal(got.nan_to_num(), want.nan_to_num())


@needs_native
def test_a_native_deployment_exports_to_onnx_with_float_concatenations(tmp_path):
    onnx = pytest.importorskip("onnx")
    net, spec = trained_like(BinarizationPolicy.strict())
    path = export_onnx(deploy(net, engine="native"), tmp_path / "m.onnx", spec.input_size)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "ConvInteger" in ops and "Concat" in ops


@needs_native
@pytest.mark.parametrize("kernel", ["one pass", "step by step"])
def test_nodes_computed_in_their_last_convs_pass_equal_the_trained_cells(kernel, monkeypatch):
    """C=16: the point-wise convs that end the sep/dil convs compute their node (value + the other op, sign
    bits into the concatenation, floats only where a later op reads them) in one pass."""
    if kernel == "step by step":  # a CPU without the one-pass kernel: the same node, one step at a time

        def no_pass(*_args, **_kwargs):
            raise NotImplementedError

        monkeypatch.setattr(native.NativeConv, "node", no_pass)
    net, _ = trained_like(BinarizationPolicy.strict(), channels=16)
    deployed = deploy(net, engine="native")
    fused = [j for c in deployed.net.cells for j, n in enumerate(c.node_convs) if n is not None]
    assert fused and any(c.output_bits for c in deployed.net.cells)
    x = torch.randn(8, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), net(x), atol=1e-4, rtol=1e-4)
        assert torch.equal(deployed(x), deployed(x))  # pooled buffers and cached signs: nothing leaks across calls


@needs_native
def test_a_cell_input_read_only_by_1bit_convs_is_produced_as_signs():
    """DARTS-V2's normal cell reads its second input only with sep convs: its preprocessing conv writes
    signs, not floats; the first input also feeds skips (floats), and the reduction cell's inputs feed pools."""
    from binas.export.deployed_cell import steps

    net, _ = trained_like(BinarizationPolicy.strict(), channels=16)
    deployed = deploy(net, engine="native")
    for cell in deployed.net.cells:
        pre0 = cell.preprocess0
        last0 = steps(pre0)[-1] if isinstance(pre0, nn.Sequential) else None
        assert steps(cell.preprocess1)[-1].sign_output == (not cell.reduction)
        assert not getattr(last0, "sign_output", False)
    assert not any(
        steps(c.preprocess1)[-1].sign_output for c in deploy(net, engine="native", fuse_signs=False).net.cells
    )
    x = torch.randn(8, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), net(x), atol=1e-4, rtol=1e-4)
