"""benchmarks/search_cost.py (and its modules search_cost_*.py): parts (c) and (d) in --quick mode, the part
selection, the results merge, and the settings read from the library."""

from __future__ import annotations

import argparse
import contextlib
import io
import json

import pytest

from binas.strategies import STRATEGIES
from tests.benchmarks.scripts import benchmark_script

#: Results of parts (a) and (b) from an earlier run: a --parts c,d run must keep them as they are.
EARLIER = {
    "machine": {"cpus": 2, "threads": 2, "loadavg_before": [0.1, 0.1, 0.1]},
    "quick": False,
    "repeats": 2,
    "step_cifar_search_size": {"darts": {"seconds": 4.44, "peak_rss_mb": 5507.1}},
    "epoch_digits_defaults": {"darts": {"seconds": 19.26, "peak_rss_mb": 1413.9}},
    "epoch_ratio_to_darts": {"darts": 1.0},
    "methods": {"stale": True},
}


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("search_cost") as module:
        yield module


@pytest.fixture(scope="module")
def quick_cd(bench, tmp_path_factory):
    """(JSON written, stdout) of `--quick --parts c,d --threads 1` over a file holding EARLIER."""
    out = tmp_path_factory.mktemp("search_cost") / "search_cost.json"
    out.write_text(json.dumps(EARLIER))
    stdout = io.StringIO()  # capsys is function-scoped; this run is shared by the module's tests
    with contextlib.redirect_stdout(stdout):
        assert bench.main(["--quick", "--parts", "c,d", "--threads", "1", "--out", str(out)]) == 0
    return json.loads(out.read_text()), stdout.getvalue()


def test_merge_keeps_the_parts_not_run(quick_cd):
    result, _ = quick_cd
    for key in (
        "machine",
        "quick",
        "repeats",
        "step_cifar_search_size",
        "epoch_digits_defaults",
        "epoch_ratio_to_darts",
    ):
        assert result[key] == EARLIER[key], key
    assert "stale" not in result["methods"]  # a part that is run is replaced, not merged key by key


def test_every_registered_method_has_one_positive_epoch(quick_cd):
    part = quick_cd[0]["methods"]
    results = part["results"]
    assert set(results) == set(STRATEGIES.names())
    assert part["isolated"] is False and part["quick"] is True  # --quick runs in this process
    assert part["machine"]["threads"] == 1 and len(part["machine"]["loadavg_before"]) == 3
    assert part["config"]["search_train_split"] > 0
    for method, r in results.items():
        assert r["seconds_per_epoch"] > 0, method
        assert r["darts_epoch_same_process_s"] > 0, method
        assert r["ratio_to_darts_epoch"] == pytest.approx(r["seconds_per_epoch"] / r["darts_epoch_same_process_s"])
        assert len(r["all_seconds"]) == r["epochs_timed"] >= 1
        assert r["peak_rss_mb"] > 0
        assert r["default_num_epochs"] >= 1
        assert r["default_search_s_estimate"] == pytest.approx(r["default_num_epochs"] * r["seconds_per_epoch"])
        assert r["epoch_is"] and isinstance(r["options"], dict)
        assert "cuda_peak_mb" not in r  # CPU run
    assert results["darts"]["ratio_to_darts_epoch"] == 1.0
    assert results["pc-darts"]["options"]["arch_warmup_epochs"] == 0  # timed with alpha steps
    assert results["cp-nas"]["default_num_epochs"] > results["darts"]["default_num_epochs"]


def test_scaling_tables_have_three_points_per_factor(quick_cd):
    part = quick_cd[0]["scaling"]
    assert set(part["tables"]) == {"layers", "channels", "batch_size"}
    assert set(part["methods"]) == {"darts", "pc-darts", "dcp-nas-ggn"}
    base = part["base"]
    for factor, rows in part["tables"].items():
        values = [row["value"] for row in rows]
        assert len(values) >= 3 and len(set(values)) == len(values), factor
        assert sum(row["base"] for row in rows) == 1
        for row in rows:
            assert row["point"] == base | {factor: row["value"]}  # one factor at a time
            assert set(row["results"]) == set(part["methods"])
            for name, r in row["results"].items():
                assert r["seconds_per_epoch"] > 0 and r["peak_rss_mb"] > 0, (factor, row["value"], name)
                assert r["batches_timed"] == part["batches_timed"]
                assert r["seconds_per_epoch"] == pytest.approx(r["seconds_per_batch"] * r["epoch_batches"])
                assert r["ratio_to_darts"] == pytest.approx(
                    r["seconds_per_epoch"] / row["results"]["darts"]["seconds_per_epoch"]
                )
    # The base point is measured once and shared by the three tables.
    bases = [next(row for row in rows if row["base"]) for rows in part["tables"].values()]
    assert all(b["results"] == bases[0]["results"] for b in bases)


def test_tables_are_printed(quick_cd):
    _, text = quick_cd
    assert "(c) one search epoch" in text and "(d) scaling" in text
    for method in STRATEGIES.names():
        assert f"\n{method} " in text
    for factor in ("layers", "channels", "batch_size"):
        assert sum(line.startswith(factor) for line in text.splitlines()) >= 3


def test_parts_are_parsed_strictly(bench):
    assert bench.parse_parts("c, d") == {"c", "d"}
    assert bench.parse_parts("a,b,c,d") == set(bench.PARTS)
    for bad in ("", "e", "a,x"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_parts(bad)


@pytest.mark.parametrize("quick", [False, True])
def test_scaling_points_vary_one_factor_and_hold_the_base_once(bench, quick):
    base = bench.scaling.scaling_base(quick)
    factors = bench.scaling.scaling_factors(base, quick)
    for factor, values in factors.items():
        assert len(values) >= 3 and base[factor] in values, factor
    points = bench.scaling.scaling_points(base, factors)
    assert len(points) == 1 + sum(len(v) - 1 for v in factors.values())
    assert points.count(base) == 1
    for p in points:
        assert sum(p[k] != base[k] for k in base) <= 1


def test_settings_come_from_the_library(bench):
    """The base point is `binas search`'s defaults, the largest point and the step size the DARTS CIFAR-10
    search preset, PC-DARTS's K its preset's, and the sampling methods are registered."""
    from binas.config.schema import RunConfig
    from binas.strategies.darts import PCDartsOptions

    defaults = RunConfig()
    base = bench.scaling.scaling_base(False)
    assert (base["layers"], base["channels"], base["batch_size"]) == (
        defaults.space.layers,
        defaults.space.channels,
        defaults.search.batch_size,
    )
    cifar = bench.step.cifar_search()
    factors = bench.scaling.scaling_factors(base, False)
    assert max(factors["layers"]) == cifar.space.layers and max(factors["channels"]) == cifar.space.channels
    assert cifar.space.policy == "released"  # DCP-NAS's Child is 1-bit at (a)'s size
    assert bench.step.pc_darts_options()["partial_channels"] == PCDartsOptions().partial_channels
    assert set(bench.methods.SAMPLING_METHODS) <= set(STRATEGIES.names())
    assert set(bench.methods.EPOCH_MEANING) == set(STRATEGIES.names())


def test_a_broken_results_file_is_not_overwritten(bench, tmp_path):
    out = tmp_path / "search_cost.json"
    out.write_text("{not json")
    with pytest.raises(SystemExit, match="not valid JSON"):
        bench.main(["--quick", "--parts", "c", "--out", str(out)])
    assert out.read_text() == "{not json"
