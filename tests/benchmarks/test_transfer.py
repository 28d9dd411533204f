"""benchmarks/transfer.py with --quick: real detect/reid runs on a tiny budget, aggregated, resumed, written."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks.scripts import benchmark_script


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("transfer") as module:
        yield module


@pytest.mark.slow
def test_quick_transfer_runs_aggregate_over_seeds_and_resume(bench, tmp_path):
    work, out = tmp_path / "runs", tmp_path / "transfer.json"
    argv = ["--quick", "--backbones", "random", "--precisions", "1-bit", "--seeds", "0", "1"]
    argv += ["--work-dir", str(work), "--out", str(out)]
    result = bench.main(argv)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert {(r["task"], r["seed"]) for r in result["runs"]} == {(t, s) for t in ("detect", "reid") for s in (0, 1)}
    detect = next(r for r in result["summary"] if r["task"] == "detect")
    maps = [r["map"] for r in result["runs"] if r["task"] == "detect"]
    assert detect["seeds"] == 2 and detect["map"] == pytest.approx(sum(maps) / 2)
    assert all(0.0 <= r["map"] <= 1.0 for r in result["runs"] if r["task"] == "detect")
    assert all(0.0 <= r["rank1"] <= 1.0 and r["params"] > 0 for r in result["runs"] if r["task"] == "reid")
    assert result["random_cell"]["normal"]  # the random cell is recorded with the results
    # a second call reads the finished runs back instead of training again
    again = bench.main(argv)
    assert [r["run_dir"] for r in again["runs"]] == [r["run_dir"] for r in result["runs"]]
    assert again["summary"] == result["summary"]
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{bench.README_BEGIN}\nOLD-BLOCK\n{bench.README_END}\nb\n")
    bench.update_readme(again, readme)
    text = readme.read_text()
    assert "OLD-BLOCK" not in text and "| random | 1-bit |" in text and "not person re-ID" in text
