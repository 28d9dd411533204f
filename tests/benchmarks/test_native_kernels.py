"""benchmarks/native_kernels.py in --quick mode: every layer timed for every engine, the pool on and off."""

from __future__ import annotations

import json

import pytest

from binas.export import native
from tests.benchmarks.scripts import benchmark_script


@pytest.mark.slow
@pytest.mark.skipif(not native.available(), reason="native kernels not built on this machine")
def test_quick_run_times_every_layer_and_both_pool_settings(tmp_path):
    out = tmp_path / "native_kernels.json"
    with benchmark_script("native_kernels") as bench:
        bench.main(["--quick", "--out", str(out)])
        shapes = len(bench.POINTWISE) + len(bench.DEPTHWISE)
    result = json.loads(out.read_text())
    assert len(result["layers"]) == shapes
    for row in result["layers"]:
        pointwise = {"native-tables", "native-tables-sign-out", "native-popcount"}
        engines = pointwise if row["kind"] == "pointwise" else {"native", "native-sign-out"}
        assert engines | {"fp32"} <= set(row) and all(row[e]["median_ms"] > 0 for e in engines)
        assert row["fp32"]["vs_fp32"] == pytest.approx(1.0)
    assert set(result["end_to_end"]) == {"real", "pool", "no-pool"}
