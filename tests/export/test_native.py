"""binas's native 1-bit kernels: every path bit for bit against exact sums, every output form, the build."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from binas.cli.main import EXIT_USAGE, main
from binas.errors import ConfigError
from binas.export import IntegerConv2d, deploy, native
from binas.export.integer_conv import default_engine, require_engine, sign_threshold

pytestmark = pytest.mark.skipif(native._compiler() is None, reason="no C compiler on this machine")

# (c_in, c_out, kernel, stride, padding, dilation, groups, size): every kernel path of bitconv.c
GEOMETRIES = {
    "pointwise 16->16 (tables, one pass)": (16, 16, 1, 1, 0, 1, 1, 9),
    "pointwise 20->24 (tables, row form)": (20, 24, 1, 1, 0, 1, 1, 7),
    "pointwise stride 2 (FactorizedReduce)": (16, 32, 1, 2, 0, 1, 1, 9),
    "pointwise 130->70 (popcount, 3 words)": (130, 70, 1, 1, 0, 1, 1, 5),
    "dense 3x3 padded": (8, 16, 3, 1, 1, 1, 1, 7),
    "dense 3x3 stride 2": (8, 16, 3, 2, 1, 1, 1, 8),
    "dense 5x5 dilated": (6, 5, 5, 1, 3, 2, 1, 9),
    "dense 3x3 popcount 70->20": (70, 20, 3, 1, 1, 1, 1, 6),
    "depth-wise 3x3": (16, 16, 3, 1, 1, 1, 16, 9),
    "depth-wise 3x3 stride 2": (8, 8, 3, 2, 1, 1, 8, 9),
    "depth-wise 3x3 dilated": (40, 40, 3, 1, 2, 2, 40, 8),
    "depth-wise 5x5 dilated stride 2": (70, 70, 5, 2, 4, 2, 70, 11),
    "depth-wise 7x7": (8, 8, 7, 1, 3, 1, 8, 5),
    # rows of whole 32-byte runs: the sign bits leave the register directly (several pixels, or half a word)
    "depth-wise c8 rows of 64 bytes": (8, 8, 3, 1, 1, 1, 8, 8),
    "depth-wise c16 rows of 128 bytes": (16, 16, 3, 1, 1, 1, 16, 8),
    "depth-wise c32 dilated": (32, 32, 3, 1, 2, 2, 32, 6),
    "depth-wise c64": (64, 64, 3, 1, 1, 1, 64, 4),
    "depth-wise c96": (96, 96, 3, 1, 1, 1, 96, 3),
}


def _case(c_in, c_out, k, groups, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    signs = torch.where(torch.randn(c_out, c_in // groups, k, k, generator=g) >= 0, 1, -1).to(torch.int8)
    x = torch.randn(3, c_in, size, size, generator=g)
    x[0, 0] = 0.0  # sign(0) = +1
    x[1, :, 1] = -0.0  # sign(-0.0) = +1 too
    return signs, x.contiguous(memory_format=torch.channels_last)


def _exact(x, signs, stride, padding, dilation, groups):
    return nn.functional.conv2d(
        torch.where(x >= 0, 1.0, -1.0).double(), signs.double(), None, stride, padding, dilation, groups
    )


@pytest.mark.parametrize("case", list(GEOMETRIES))
def test_every_kernel_path_and_output_form_is_exact(case):
    c_in, c_out, k, stride, padding, dilation, groups, size = GEOMETRIES[case]
    signs, x = _case(c_in, c_out, k, groups, size)
    exact = _exact(x, signs, stride, padding, dilation, groups)
    conv = native.NativeConv(signs, [stride] * 2, [padding] * 2, [dilation] * 2, groups)
    scale, shift = torch.rand(c_out) + 0.1, torch.randn(c_out)
    threshold = torch.randint(-k * k * c_in // groups, k * k * c_in // groups + 1, (c_out,), dtype=torch.int32)
    sign = torch.where(exact >= threshold.reshape(1, -1, 1, 1).double(), 1, -1).to(torch.int8)
    int8 = torch.where(x >= 0, 1, -1).to(torch.int8).contiguous(memory_format=torch.channels_last)
    inputs = {"float": x, "int8": int8, "bits": native.sign_bits(x, 1)}
    for form, given in inputs.items():
        acc = conv(given, native.ACC, scale, shift, threshold)
        assert acc.dtype == torch.int32 and torch.equal(acc.double(), exact), (case, form)
        assert torch.equal(conv(given, native.SIGN, scale, shift, threshold), sign), (case, form)
        bits = conv(given, native.BITS, scale, shift, threshold)
        assert torch.equal(native.unpack_bits(bits, c_out), sign.float()), (case, form)
        value = conv(given, native.VALUE, scale, shift, threshold)
        expected = (exact * scale.double().reshape(1, -1, 1, 1) + shift.double().reshape(1, -1, 1, 1)).float()
        torch.testing.assert_close(value, expected, atol=1e-5, rtol=1e-5)


def test_the_kernels_give_the_same_results_on_several_threads():
    signs, x = _case(16, 16, 3, 16, 12)
    dense_signs, _ = _case(16, 32, 1, 1, 12, seed=1)
    dw = native.NativeConv(signs, [1, 1], [1, 1], [1, 1], 16)
    pw = native.NativeConv(dense_signs, [1, 1], [0, 0], [1, 1], 1)
    scale, shift, thr = torch.ones(32), torch.zeros(32), torch.zeros(32, dtype=torch.int32)

    def run():
        bits = dw(x, native.BITS, scale[:16], shift[:16], thr[:16])
        return bits, pw(bits, native.VALUE, scale, shift, thr), pw(x, native.ACC, scale, shift, thr)

    one = run()
    torch.set_num_threads(2)  # restored by the suite's fixture
    for a, b in zip(one, run()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bits", [False, True])
def test_a_sign_output_is_the_sign_of_the_affine_value_for_every_channel(bits):
    """Negative, zero and tiny scales, thresholds beyond the fan-in: the native sign (int8 or bits) equals
    the reference engine's, which computes sign(acc * scale + shift) directly."""
    c = 16
    signs, x = _case(c, c, 1, 1, 6)
    scale = torch.tensor([0.5, -0.25, 0.0, 0.0, 1e-9, -2.0, 1.0, -1.0] * 2)
    shift = torch.tensor([0.3, 0.6, 0.1, -0.1, 5.0, 40.0, -3.0, 2.5] * 2)
    fast, ref = (IntegerConv2d(signs, scale, shift, engine=e) for e in ("native", "reference"))
    fast.output_sign(bits=bits)
    ref.output_sign()
    out = fast(x)
    got = native.unpack_bits(out, c) if bits else out.float()
    assert torch.equal(got, ref(x))
    flip, weight, bias = sign_threshold(scale, shift, c)
    assert torch.any(flip < 0) and torch.any(weight == 0)  # the case covers flipped and constant channels


def test_a_geometry_without_a_native_kernel_runs_on_the_reference_path():
    signs, x = _case(8, 8, 3, 2, 6)  # grouped, not depth-wise
    conv = IntegerConv2d(signs, torch.ones(8), torch.zeros(8), padding=1, groups=2, engine="native")
    assert not conv.native_supported()
    assert torch.equal(conv.accumulate(x).double(), _exact(x, signs, 1, 1, 1, 2))


def test_a_native_deployment_passes_bits_into_dense_and_int8_into_depthwise_convs():
    from binas.quant.policy import BinarizationPolicy
    from tests.export.test_deploy import trained_like

    net, _ = trained_like(BinarizationPolicy.strict())
    deployed = deploy(net, engine="native")
    convs = list(deployed.integer_convs().values())
    assert any(c.sign_bits for c in convs) and any(c.sign_output and not c.sign_bits for c in convs)
    x = torch.randn(8, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), net(x), atol=1e-4, rtol=1e-4)


def test_the_build_is_cached_per_source_and_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("BINAS_KERNEL_CACHE", str(tmp_path))
    first = native.build()
    assert first is not None and first.parent == tmp_path and first.suffix == ".so"
    stamp = first.stat().st_mtime_ns
    assert native.build() == first and first.stat().st_mtime_ns == stamp  # not rebuilt


def test_without_a_compiler_or_when_turned_off_other_engines_are_used(monkeypatch, tmp_path):
    monkeypatch.setenv("BINAS_KERNEL_CACHE", str(tmp_path))
    with monkeypatch.context() as m:
        m.setattr(native, "_compiler", lambda: None)
        assert native.build() is None
    signs, x = _case(8, 8, 3, 8, 6)
    conv = IntegerConv2d(signs, torch.ones(8), torch.zeros(8), padding=1, groups=8, engine="native")
    monkeypatch.setenv("BINAS_NATIVE", "0")
    native.library.cache_clear()
    try:
        assert not native.available() and default_engine() != "native"
        with pytest.raises(ConfigError, match="'native' integer engine is not available"):
            require_engine("native")
        assert torch.equal(conv.accumulate(x).double(), _exact(x, signs, 1, 1, 1, 8))  # the reference path
    finally:
        native.library.cache_clear()


def test_cli_deploy_with_an_unavailable_engine_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BINAS_NATIVE", "0")
    native.library.cache_clear()
    try:
        code = main(["deploy", str(tmp_path / "no-such-run"), "--engine", "native"])
    finally:
        monkeypatch.delenv("BINAS_NATIVE")
        native.library.cache_clear()
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USAGE and len(err.splitlines()) == 1 and "'native' integer engine" in err


def test_a_pooled_buffer_is_reused_only_when_no_tensor_references_it(monkeypatch):
    monkeypatch.setenv("BINAS_NATIVE_POOL", "1")
    native.release_pool()
    a = native.empty((2, 3, 4, 5), torch.float32, channels_last=True)
    assert a.is_contiguous(memory_format=torch.channels_last)
    b = native.empty((2, 3, 4, 5), torch.float32, channels_last=True)
    assert a.data_ptr() != b.data_ptr()  # `a` is alive
    ptr = a.data_ptr()
    view = a[:, :, ::2]
    del a
    c = native.empty((2, 3, 4, 5), torch.float32, channels_last=True)
    assert c.data_ptr() != ptr  # a view of `a` still reads it
    del view
    d = native.empty((2, 3, 4, 5), torch.float32, channels_last=True)
    assert d.data_ptr() == ptr  # free again: reused
    monkeypatch.setenv("BINAS_NATIVE_POOL", "0")
    del d
    assert native.empty((2, 3, 4, 5), torch.float32, channels_last=True).data_ptr() != ptr
    native.release_pool()


def test_the_pool_holds_at_most_its_byte_budget(monkeypatch):
    monkeypatch.setenv("BINAS_NATIVE_POOL", "1")
    monkeypatch.setenv("BINAS_NATIVE_POOL_MB", "1")  # room for one 0.5 MiB buffer, not a 1 MiB one
    native.release_pool()
    kept = native.empty((2**17,), torch.float32)  # 0.5 MiB: pooled
    ptr = kept.data_ptr()
    del kept
    assert native.empty((2**17,), torch.float32).data_ptr() == ptr
    assert native.empty((2**17,), torch.float32)._base is not None  # a pooled buffer is handed out as a view
    big = native.empty((2**18,), torch.float32)  # 1 MiB: over the budget, a plain tensor
    assert big._base is None
    native.release_pool()


def test_a_float_map_is_signed_once_for_all_its_consumers_until_it_changes():
    x = torch.randn(2, 16, 5, 5).contiguous(memory_format=torch.channels_last)
    native.clear_sign_cache()
    first = native.sign_bits(x, 1)
    assert native.sign_bits(x, 1) is first  # shared
    x.neg_()  # an in-place change (a tensor with a version counter): signed again
    again = native.sign_bits(x, 1)
    assert again is not first and torch.equal(native.unpack_bits(again, 16), torch.where(x >= 0, 1.0, -1.0))
    assert native.sign_bits(x.clone(), 1) is not again  # another tensor with the same values
    native.clear_sign_cache()


def test_pooled_buffers_serve_calls_in_and_out_of_inference_mode():
    from binas.quant.policy import BinarizationPolicy
    from tests.export.test_deploy import trained_like

    net, _ = trained_like(BinarizationPolicy.strict(), channels=16)
    deployed = deploy(net, engine="native")
    x = torch.randn(4, 3, 8, 8)
    with torch.inference_mode():
        first = deployed(x)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), first)  # buffers first made in inference mode, changed in place
    with torch.inference_mode():
        torch.testing.assert_close(deployed(x), first)


def test_cli_engine_choices_are_the_engines():
    import argparse

    from binas.cli import deploy as cli_deploy
    from binas.export.integer_conv import ENGINES

    sub = argparse.ArgumentParser().add_subparsers()
    cli_deploy.add_parser(sub)
    (action,) = [a for a in sub.choices["deploy"]._actions if "--engine" in a.option_strings]
    assert tuple(action.choices) == ENGINES


def test_rows_wider_than_the_kernels_buffers_run_on_the_reference_path():
    signs, _ = _case(16, 16, 1, 1, 4)
    x = torch.randn(1, 16, 2, native.MAX_ROW // 16 + 5).contiguous(memory_format=torch.channels_last)
    conv = IntegerConv2d(signs, torch.ones(16), torch.zeros(16), engine="native")
    exact = _exact(x, signs, 1, 0, 1, 1)
    for given in (x, native.sign_bits(x, 1)):  # floats, and the bits a producer may have handed over
        assert torch.equal(conv.accumulate(given).double(), exact)


def test_a_damaged_cached_build_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("BINAS_KERNEL_CACHE", str(tmp_path))
    path = native.build()
    path.write_bytes(b"not a shared library")
    native.library.cache_clear()
    try:
        assert native.library() is not None and path.read_bytes() != b"not a shared library"
    finally:
        monkeypatch.undo()
        native.library.cache_clear()
