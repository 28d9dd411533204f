"""benchmarks/inference.py in --quick mode: a 1-epoch 1-bit net and its real twin, timed, packed, reloaded."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks.scripts import benchmark_script


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("inference") as module:
        yield module


@pytest.fixture(scope="module")
def quick_result(bench, tmp_path_factory):
    """(returned dict, written JSON, work dir holding the two training runs) of one --quick run."""
    tmp = tmp_path_factory.mktemp("inference")
    out, work = tmp / "inference.json", tmp / "runs"
    returned = bench.main(["--quick", "--threads", "1", "--work-dir", str(work), "--out", str(out)])
    return returned, json.loads(out.read_text()), work


@pytest.mark.slow
def test_quick_run_writes_positive_latencies_for_every_variant_and_batch(bench, quick_result):
    returned, result, _ = quick_result
    assert result["latency"] == json.loads(json.dumps(returned["latency"]))
    cases = {(r["variant"], r["batch"]) for r in result["latency"]}
    assert cases == {(v, b) for v in bench.VARIANTS for b in (1, bench.QUICK["batch_size"])}
    for row in result["latency"]:
        assert row["median_ms"] > 0 and row["min_ms"] <= row["median_ms"] and row["repeats"] == bench.QUICK["repeats"]
        assert row["per_image_ms"] == pytest.approx(row["median_ms"] / row["batch"])
    real = [r for r in result["latency"] if r["variant"] == "real"]
    assert all(r["vs_real"] == pytest.approx(1.0) for r in real)
    assert set(result["op_breakdown"]) >= set(bench.VARIANTS)
    assert result["deterministic_algorithms_while_timing"] is False


def test_quick_run_reports_the_machine_and_the_honesty_note(quick_result):
    _, result, _ = quick_result
    machine = result["machine"]
    assert machine["torch_threads"] == 1 and machine["cpu_count"] >= 1 and machine["torch"]
    assert "loadavg_before" in machine and "loadavg_after" in machine
    assert "no 1-bit kernels" in result["note"]
    assert result["network"]["binary"]["trained"] and result["network"]["real"]["trained"]


def test_packed_file_is_1_bit_per_binary_weight_and_matches_the_estimate(quick_result):
    _, result, _ = quick_result
    size = result["size"]
    packed = size["packed"]
    assert packed["file_bytes"] > 0 and packed["binary_weight_bits"] > 0
    # the part of the packed payload the profiler counts is exactly its Mbit estimate
    assert packed["estimate_mbit"] == pytest.approx(size["binary"]["estimate_mbit"])
    assert size["packed_estimate_part_over_estimate"] == pytest.approx(1.0)
    # the rest of the file: BN running statistics, byte padding, zip container and index
    assert packed["file_mbit"] > packed["payload_mbit"] >= packed["estimate_mbit"]
    assert size["overhead_bits"]["bn_running_stats"] == packed["buffer_bits"] > 0
    # the 1-bit estimate is below the real one, and the packed file below the float32 file
    assert size["binary"]["estimate_mbit"] < size["real"]["estimate_mbit"]
    assert packed["file_bytes"] < size["real"]["torch_save_bytes"]
    # training form: float32 latent weights, as big as the real twin's plus the BN that the darts family's
    # 1-bit sep/dil convs put before the binary point-wise input (2 floats per channel, a few percent)
    assert size["real"]["param_bytes"] < size["binary"]["param_bytes"] < 1.05 * size["real"]["param_bytes"]


def test_packed_reload_and_inference_form_predict_exactly_what_the_trained_1_bit_net_does(quick_result):
    _, result, _ = quick_result
    acc = result["accuracy"]
    assert acc["images"] > 0 and set(acc["top1"]) == {"binary", "binary-inference", "packed-reload", "real"}
    for form in ("packed-reload", "binary-inference"):
        agreement = acc[f"{form}_vs_binary"]
        assert agreement["prediction_agreement_pct"] == 100.0
        assert agreement["logits_bitwise_equal"] and agreement["max_abs_logit_diff"] == 0.0
        assert acc["top1"][form] == acc["top1"]["binary"]
    assert 0.0 <= acc["top1"]["real"] <= 100.0


def test_run_dir_benchmarks_an_existing_training_run(bench, quick_result, tmp_path):
    from binas.errors import ConfigError

    _, first, work = quick_result
    out = tmp_path / "again.json"
    again = bench.main(
        [
            "--quick",
            "--threads",
            "1",
            "--repeats",
            "2",
            "--run-dir",
            str(work / "binary"),
            "--real-run-dir",
            str(work / "real"),
            "--out",
            str(out),
        ]
    )
    assert again["network"]["binary"]["source"] == str(work / "binary")
    assert again["accuracy"]["top1"] == first["accuracy"]["top1"]  # the same trained networks, re-read
    assert again["size"]["packed"]["binary_weight_bits"] == first["size"]["packed"]["binary_weight_bits"]
    assert {r["repeats"] for r in again["latency"]} == {2}
    with pytest.raises(ConfigError, match="real-valued"):
        bench.main(["--quick", "--run-dir", str(work / "real"), "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        bench.parse_args(["--real-run-dir", str(work / "real")])
