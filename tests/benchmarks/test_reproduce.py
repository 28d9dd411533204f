"""benchmarks/reproduce.py: a tiny reproduction (two rows, two seeds, in-process), resume and README block."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks.scripts import benchmark_script

TINY = ["--set", "data.max_train_samples=48", "--set", "space.steps=2", "--set", "space.multiplier=2",
        "--set", "train.eval_batch_size=128"]


@pytest.fixture(scope="module")
def reproduce():
    with benchmark_script("reproduce") as module:
        yield module


@pytest.fixture(scope="module")
def finished(reproduce, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reproduce")
    argv = ["--quick", "--seeds", "0", "1", "--only", "darts", "random", "--jobs", "1", "--work-dir",
            str(tmp / "runs"), "--out", str(tmp / "out"), *TINY]
    assert reproduce.main(argv) == 0
    return tmp, argv, json.loads((tmp / "out.json").read_text())


def test_table_aggregates_every_seed_of_every_row(finished) -> None:
    tmp, _, result = finished
    assert [r["label"] for r in result["table"]] == ["random", "darts"]  # the order of ROWS
    for row in result["table"]:
        runs = result["runs"][row["label"]]
        assert row["seeds"] == len(runs) == 2
        assert row["top1_all"] == [r["top1"] for r in runs]
        assert min(row["top1_all"]) <= row["top1_mean"] <= max(row["top1_all"])
        assert 0.0 <= row["top1_mean"] <= 100.0 and row["search_cpu_seconds"] > 0 and row["params"] > 0
    assert (tmp / "out.png").stat().st_size > 0
    table = (tmp / "out.md").read_text()
    assert "| darts |" in table and "| random |" in table and "2 seeds" in table


def test_budget_reaches_every_run(finished) -> None:
    _, _, result = finished
    for summaries in result["runs"].values():
        for s in summaries:
            assert s["search_epochs"] == 1  # QUICK_BUDGET.search_epochs for epoch-based rows
            assert s["dataset"] == "digits"


def test_a_second_call_reads_finished_runs_back(reproduce, finished, monkeypatch) -> None:
    tmp, argv, first = finished
    from binas import pipeline

    def no_new_runs(*args, **kwargs):
        raise AssertionError("a finished run was run again")

    monkeypatch.setattr(pipeline, "run", no_new_runs)
    assert reproduce.main(argv) == 0
    again = json.loads((tmp / "out.json").read_text())
    assert again["runs"] == first["runs"]  # same summaries, not new runs (their times would differ)


def test_readme_block_is_rewritten_from_the_json(reproduce, finished, tmp_path) -> None:
    tmp, _, _ = finished
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{reproduce.README_BEGIN}\nold\n{reproduce.README_END}\n\nafter\n")
    reproduce.update_readme(tmp / "out", readme)
    text = readme.read_text()
    assert "old" not in text and "| darts |" in text and text.endswith("after\n")
    readme.write_text("no markers")
    with pytest.raises(SystemExit, match="block"):
        reproduce.update_readme(tmp / "out", readme)


def test_unknown_row_is_an_error(reproduce, capsys) -> None:
    with pytest.raises(SystemExit):
        reproduce.main(["--only", "no-such-method"])
    assert "unknown row" in capsys.readouterr().err
