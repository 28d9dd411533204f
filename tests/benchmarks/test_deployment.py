"""benchmarks/deployment.py in --quick mode: a 1-epoch strict 1-bit net and its real twin, deployed and timed."""

from __future__ import annotations

import json

import pytest

from binas.export import default_engine, engine_available
from tests.benchmarks.scripts import benchmark_script


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("deployment") as module:
        yield module


@pytest.fixture(scope="module")
def quick(bench, tmp_path_factory):
    """(the module, the written JSON, its path) of one --quick run on the strict policy."""
    out = tmp_path_factory.mktemp("deployment") / "deployment.json"
    bench.main(["--quick", "--policy", "strict", "--repeats", "2", "--out", str(out)])
    return bench, json.loads(out.read_text()), out


@pytest.mark.slow
def test_every_form_is_timed_at_both_batches_and_thread_counts(quick):
    bench, result, _ = quick
    (policy,) = result["policies"]
    threads = {r["threads"] for r in policy["latency"]}
    assert 1 in threads
    cases = {(r["form"], r["batch"], r["threads"]) for r in policy["latency"]}
    forms = [f for f in bench.FORMS if not f.startswith("deployed-") or engine_available(f.split("-")[1])]
    assert cases == {(f, b, t) for f in forms for b in (1, bench.QUICK["batch_size"]) for t in threads}
    assert all(r["median_ms"] > 0 and r["min_ms"] <= r["median_ms"] for r in policy["latency"])
    assert all(r["vs_real"] == pytest.approx(1.0) for r in policy["latency"] if r["form"] == "real")
    breakdown = policy["time_by_module_kind"][policy["default_form"]]
    assert policy["default_form"] == f"deployed-{default_engine()}"
    assert breakdown["total_ms"] > 0 and breakdown["ms_by_module_kind"].get("IntegerConv2d", 0) > 0


@pytest.mark.slow
def test_deployed_forms_agree_with_the_trained_network_and_sizes_are_reported(quick):
    _, result, _ = quick
    (policy,) = result["policies"]
    accuracy = policy["accuracy"]
    assert accuracy["integer_convs"] > 0 and accuracy["integer_sum_mismatches"] == 0
    for form in ("deployed-native", "deployed-onednn", "deployed-reference", "onnx-int8-ort"):
        if form not in accuracy["vs_trained_1bit"]:
            assert not engine_available(form.split("-")[1])
            continue
        assert accuracy["vs_trained_1bit"][form]["agreement_pct"] == 100.0
    size = policy["size"]
    assert size["packed"]["binary_weight_bits"] > 0 and size["packed_over_estimate_plus_bn"] > 0
    assert size["onnx_int8_bytes"] > 0 and size["onnx_float_bytes"] > 0
    machine = result["machine"]
    assert machine["torch_cpu_capability"] and set(machine["isa_flags"]) >= {"avx2", "avx512_vnni", "amx_int8"}


@pytest.mark.slow
def test_readme_block_is_written_from_the_json(quick, tmp_path, monkeypatch):
    bench, result, out = quick
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench.README_BEGIN}\nOLD-BLOCK\n{bench.README_END}\nrest\n")
    bench.update_readme(result, readme)
    text = readme.read_text()
    assert "OLD-BLOCK" not in text and "| strict | deployed-onednn |" in text and text.endswith("rest\n")
