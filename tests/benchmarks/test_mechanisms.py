"""benchmarks/mechanisms.py: one small variant end to end, the JSON it writes, bad variant names."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks.scripts import benchmark_script


@pytest.mark.slow
def test_writes_the_per_epoch_magnitudes_of_each_variant(tmp_path, capsys) -> None:
    out = tmp_path / "m.json"
    with benchmark_script("mechanisms") as bench:
        assert (
            bench.main(
                [
                    "--epochs",
                    "1",
                    "--max-train-samples",
                    "64",
                    "--only",
                    "default",
                    "L_R summed (earlier)",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        assert bench.main(["--only", "nope", "--out", str(out)]) == 2
    result = json.loads(out.read_text())
    assert result["setup"]["epochs"] == 1 and list(result["variants"]) == ["default", "L_R summed (earlier)"]
    default = result["variants"]["default"]["epochs"][0]
    summed = result["variants"]["L_R summed (earlier)"]["epochs"][0]
    assert default["tangent_ratio"] > 0 and default["child_backtrack_per_round"] > 0
    assert summed["child_recon_kd_ratio"] > 10 * default["child_recon_kd_ratio"]  # the summed L_R dominates KD
    assert "unknown variant" in capsys.readouterr().err
