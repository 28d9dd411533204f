"""benchmarks/reproduce.py: the paired statistics on hand-made numbers, the row set, the table and README
rendering, and a tiny reproduction (two rows, two seeds, in-process) with resume."""

from __future__ import annotations

import json
import math

import pytest

from tests.benchmarks.scripts import benchmark_script

TINY = [
    "--set",
    "data.max_train_samples=48",
    "--set",
    "space.steps=2",
    "--set",
    "space.multiplier=2",
    "--set",
    "train.eval_batch_size=128",
]
ROW_LABELS = [
    "random",
    "darts",
    "darts 1-bit",
    "pc-darts",
    "pc-darts 1-bit",
    "bnas",
    "cp-nas",
    "cp-nas + CP loss",
    "ddpnas",
    "dcp-nas",
    "dcp-nas no tangent",
    "dcp-nas no reconstruction",
    "dcp-nas no decoupled",
]
#: Student t quantiles t(0.975, df), from the tables (df 1, 4).
T975 = {1: 12.706204736174698, 4: 2.7764451051977987}


@pytest.fixture(scope="module")
def reproduce():
    with benchmark_script("reproduce") as module:
        yield module


# --- statistics on hand-made per-seed numbers ---------------------------------------------------------------


def test_t_interval_is_the_student_t_interval(reproduce) -> None:
    ci = reproduce.t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = T975[4] * math.sqrt(2.5) / math.sqrt(5)  # sd = sqrt(2.5)
    assert ci["n"] == 5 and ci["mean"] == pytest.approx(3.0) and ci["sd"] == pytest.approx(math.sqrt(2.5))
    assert ci["half"] == pytest.approx(half, rel=1e-9) and ci["half"] == pytest.approx(1.9632432, abs=1e-6)
    assert (ci["lo"], ci["hi"]) == pytest.approx((3.0 - half, 3.0 + half))
    two = reproduce.t_interval([90.0, 92.0])  # n = 2: t(0.975, 1) = 12.71, sd / sqrt(2) = 1
    assert two["half"] == pytest.approx(T975[1], rel=1e-9)
    one = reproduce.t_interval([90.0])
    assert one["mean"] == 90.0 and one["half"] is None and one["lo"] is None
    assert not reproduce.outside_noise(one)


def test_paired_difference_pairs_by_seed(reproduce) -> None:
    reference = {0: 80.0, 1: 85.0, 2: 90.0, 3: 75.0, 4: 95.0}
    shift = {0: 1.0, 1: 1.2, 2: 0.8, 3: 1.1, 4: 0.9}
    row = {s: reference[s] + shift[s] for s in reference} | {7: 50.0}  # seed 7: no partner, left out
    diff = reproduce.paired_difference(row, dict(reversed(reference.items())))
    assert diff["seeds"] == [0, 1, 2, 3, 4] and diff["diffs"] == pytest.approx([1.0, 1.2, 0.8, 1.1, 0.9])
    sd = math.sqrt(sum((d - 1.0) ** 2 for d in shift.values()) / 4)
    assert diff["mean"] == pytest.approx(1.0) and diff["half"] == pytest.approx(T975[4] * sd / math.sqrt(5))
    assert diff["outside_noise"]  # paired: +1.00 +- 0.20 excludes 0 ...
    a = reproduce.t_interval(list(row[s] for s in reference))
    b = reproduce.t_interval(list(reference.values()))
    assert a["lo"] < b["hi"]  # ... although the two rows' own intervals overlap widely
    noisy = reproduce.paired_difference({s: reference[s] + d for s, d in enumerate([-1, 1, -1, 1, 0])}, reference)
    assert noisy["mean"] == pytest.approx(0.0) and noisy["lo"] < 0 < noisy["hi"] and not noisy["outside_noise"]
    below = reproduce.paired_difference({s: v - 2.0 - 0.1 * s for s, v in reference.items()}, reference)
    assert below["hi"] < 0 and below["outside_noise"]  # a difference below 0 is outside the noise too
    assert reproduce.paired_difference({9: 1.0}, reference) is None


def _summary(seed: int, top1: float, **extra) -> dict:
    return {
        "seed": seed,
        "top1": top1,
        "search_seconds": 10.0,
        "train_seconds": 5.0,
        "search_cpu_seconds": 9.0,
        "train_cpu_seconds": 4.0,
        "search_epochs": 2,
        "params": 120_000,
        "ops": 1.5e6,
        "memory_mbit": 0.4,
        "archid": f"a{seed}",
        **extra,
    }


def _hand_made(reproduce, labels=("darts 1-bit", "dcp-nas", "random")) -> dict:
    """A result dict as main() writes it, from made-up per-seed top-1 (5 seeds)."""
    base = [80.0, 85.0, 90.0, 75.0, 95.0]
    top1 = {
        "darts 1-bit": base,
        "dcp-nas": [b + 3.0 + 0.1 * i for i, b in enumerate(base)],
        "random": [b + d for b, d in zip(base, [-1, 1, -1, 1, 0], strict=True)],
    }
    runs = {label: [_summary(s, v) for s, v in enumerate(top1[label])] for label in labels}
    rows = [r for r in reproduce.ROWS if r.label in labels]
    return {
        "budget": {"name": "strict", "description": "hand-made"},
        "data": "digits",
        "seeds": [0, 1, 2, 3, 4],
        "jobs": 2,
        "threads": 1,
        "finished": "2026-12-01T10:00:00+0000",
        "machine": {"cpus": 2, "processor": "test CPU", "torch": "x"},
        "table": reproduce.aggregate(rows, runs),
        "runs": runs,
    }


def test_aggregate_holds_intervals_and_paired_differences(reproduce) -> None:
    table = {r["label"]: r for r in _hand_made(reproduce)["table"]}
    assert list(table) == ["random", "darts 1-bit", "dcp-nas"]  # the order of ROWS
    ref = table["darts 1-bit"]
    assert ref["top1_all"] == [80.0, 85.0, 90.0, 75.0, 95.0] and ref["seed_list"] == [0, 1, 2, 3, 4]
    assert ref["top1_ci"] == pytest.approx(T975[4] * math.sqrt(62.5) / math.sqrt(5))  # sd of the 5 = sqrt(62.5)
    assert set(ref["paired"]) == {"dcp-nas"} and set(table["random"]["paired"]) == {"darts 1-bit", "dcp-nas"}
    dcp = table["dcp-nas"]["paired"]["darts 1-bit"]
    assert dcp["mean"] == pytest.approx(3.2) and dcp["outside_noise"]
    assert table["darts 1-bit"]["paired"]["dcp-nas"]["mean"] == pytest.approx(-3.2)
    assert not table["random"]["paired"]["darts 1-bit"]["outside_noise"]
    assert table["random"]["paired"]["dcp-nas"]["outside_noise"]


def test_markdown_shows_intervals_deltas_and_legend(reproduce) -> None:
    text = reproduce.markdown(_hand_made(reproduce))
    header = next(line for line in text.splitlines() if line.startswith("| method"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "method",
        "top-1 % (mean ± 95 % CI)",
        "Δ vs DARTS 1-bit",
        "Δ vs DCP-NAS",
        "search CPU s",
        "train CPU s",
        "params (M)",
        "OPs (M)",
        "Mbit",
    ]
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| method")
    }
    assert rows["darts 1-bit"][1] == "85.00 ± 9.82" and rows["darts 1-bit"][2] == "ref"
    assert rows["dcp-nas"][2].startswith("**+3.20 ± ") and rows["dcp-nas"][3] == "ref"  # outside the noise: bold
    assert rows["random"][2].startswith("+0.00 ± ") and "**" not in rows["random"][2]  # inside: plain
    assert rows["random"][3].startswith("**-3.20 ± ")
    assert "5 seeds (0 1 2 3 4, the same for every row)" in text and "hand-made" in text
    assert reproduce.LEGEND in text
    assert "Outside the seed noise" in text and "dcp-nas (+3.20)" in text and "random (-3.20)" in text
    assert "The other 1 paired difference is inside the seed noise." in text
    alone = reproduce.markdown(_hand_made(reproduce, labels=("random",)))
    assert "| random | 85.00 ± " in alone and alone.count(" — ") == 2 and "Outside" not in alone


def test_readme_block_is_rewritten_from_a_json(reproduce, tmp_path) -> None:
    out = tmp_path / "results" / "reproduce"
    out.parent.mkdir()
    out.with_suffix(".json").write_text(json.dumps(_hand_made(reproduce)))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{reproduce.README_BEGIN}\nSTALE TABLE\n{reproduce.README_END}\n\nafter\n")
    reproduce.update_readme(out, readme)
    text = readme.read_text()
    assert "STALE TABLE" not in text and text.endswith("after\n") and text.startswith("# x\n\n")
    block = text.split(reproduce.README_BEGIN)[1].split(reproduce.README_END)[0]
    assert "| dcp-nas | " in block and "Δ vs DCP-NAS" in block and reproduce.LEGEND in block
    assert "![accuracy vs search cost](results/reproduce.png)" in block
    readme.write_text("no markers")
    with pytest.raises(SystemExit, match="block"):
        reproduce.update_readme(out, readme)


def test_noise_sentence_when_nothing_is_outside(reproduce) -> None:
    table = [{"label": "a", "paired": {"dcp-nas": {"mean": 0.1, "outside_noise": False}}}]
    assert reproduce.noise_sentence(table).startswith("No paired difference is outside the seed noise")
    assert reproduce.noise_sentence([{"label": "a", "paired": {}}]) == ""


# --- rows, budgets, job order ---------------------------------------------------------------------------------


def test_rows_and_references(reproduce) -> None:
    assert [r.label for r in reproduce.ROWS] == ROW_LABELS
    assert {ref for ref, _ in reproduce.REFERENCES} == {"darts 1-bit", "dcp-nas"}
    by_label = {r.label: r for r in reproduce.ROWS}
    for label in ("random", "darts 1-bit", "pc-darts 1-bit", "ddpnas"):
        assert "search.binary=true" in by_label[label].overrides
    for label in ("darts", "pc-darts"):
        assert not any("binary" in o for o in by_label[label].overrides)  # searched on the real supernet
    assert "train.loss.kind=cp" in by_label["cp-nas + CP loss"].overrides and by_label["cp-nas"].overrides == ()
    assert not any("backtrack_eta" in o or "hessian" in o for r in reproduce.ROWS for o in r.overrides)
    assert len({r.slug for r in reproduce.ROWS}) == len(reproduce.ROWS)
    assert by_label["cp-nas + CP loss"].slug == "cp-nas-cp-loss"
    assert list(reproduce.DEFAULT_SEEDS) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("budget", ["DEFAULT_BUDGET", "QUICK_BUDGET"])
def test_every_row_of_every_budget_is_a_valid_config(reproduce, budget) -> None:
    b = getattr(reproduce, budget)
    for row in reproduce.ROWS:
        cfg = reproduce.resolved_config(row.method, b.overrides(row, 3), 1)  # unknown keys / options would raise
        assert cfg.seed == 3 and cfg.space.policy == "strict" and cfg.search.method == row.method
        assert bool(cfg.search.binary) == ("search.binary=true" in row.overrides)
        assert cfg.train.loss.kind == ("cp" if row.label == "cp-nas + CP loss" else "ce")
        if row.epoch_based:
            assert cfg.search.epochs == b.search_epochs


def test_default_budget_fits_the_hour(reproduce) -> None:
    total = sum(r.cost for r in reproduce.ROWS) * len(reproduce.DEFAULT_SEEDS)
    assert total <= 7500  # CPU s: about an hour with 2 jobs on 2 cores
    b = reproduce.DEFAULT_BUDGET
    assert "space.policy=strict" in b.common and "seed=0" in b.overrides(reproduce.ROWS[0], 0)


def test_longest_runs_are_submitted_first(reproduce) -> None:
    rows = {r.label: r for r in reproduce.ROWS}
    tasks = [(rows[label], seed) for label in ("random", "dcp-nas", "bnas") for seed in (0, 1)]
    order = [(row.label, seed) for row, seed in reproduce.submission_order(tasks)]
    assert order == [("dcp-nas", 0), ("dcp-nas", 1), ("bnas", 0), ("bnas", 1), ("random", 0), ("random", 1)]
    costs = [row.cost for row, _ in reproduce.submission_order([(r, 0) for r in reproduce.ROWS])]
    assert costs == sorted(costs, reverse=True)


# --- a tiny real reproduction ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(reproduce, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reproduce")
    argv = [
        "--quick",
        "--seeds",
        "0",
        "1",
        "--only",
        "darts 1-bit",
        "random",
        "--jobs",
        "1",
        "--work-dir",
        str(tmp / "runs"),
        "--out",
        str(tmp / "out"),
        *TINY,
    ]
    assert reproduce.main(argv) == 0
    return tmp, argv, json.loads((tmp / "out.json").read_text())


def test_table_aggregates_every_seed_of_every_row(finished) -> None:
    tmp, _, result = finished
    assert [r["label"] for r in result["table"]] == ["random", "darts 1-bit"]  # the order of ROWS
    for row in result["table"]:
        runs = result["runs"][row["label"]]
        assert row["seeds"] == len(runs) == 2 and [r["seed"] for r in runs] == [0, 1]
        assert row["top1_all"] == [r["top1"] for r in runs]
        assert min(row["top1_all"]) <= row["top1_mean"] <= max(row["top1_all"])
        assert row["top1_lo"] <= row["top1_mean"] <= row["top1_hi"]
        assert 0.0 <= row["top1_mean"] <= 100.0 and row["search_cpu_seconds"] > 0 and row["params"] > 0
    random = result["table"][0]["paired"]["darts 1-bit"]
    assert random["seeds"] == [0, 1] and random["diffs"] == pytest.approx(
        [a["top1"] - b["top1"] for a, b in zip(result["runs"]["random"], result["runs"]["darts 1-bit"], strict=True)]
    )
    assert (tmp / "out.png").stat().st_size > 0
    table = (tmp / "out.md").read_text()
    assert "| darts 1-bit |" in table and "| random |" in table and "2 seeds" in table
    assert result["cpu_seconds"] > 0 and result["references"] == ["darts 1-bit", "dcp-nas"]


def test_budget_reaches_every_run(finished) -> None:
    from binas.config.io import load_yaml

    tmp, _, result = finished
    for label, summaries in result["runs"].items():
        for s in summaries:
            assert s["search_epochs"] == 1  # QUICK_BUDGET.search_epochs for epoch-based rows
            assert s["dataset"] == "digits"
            config = load_yaml(tmp / "runs" / label.replace(" ", "-") / f"seed{s['seed']}" / "config.yaml")
            assert config["space"]["policy"] == "strict" and config["search"]["binary"] is True  # 1-bit rows


def test_a_second_call_reads_finished_runs_back(reproduce, finished, monkeypatch) -> None:
    tmp, argv, first = finished
    from binas.workflows import run as pipeline

    def no_new_runs(*args, **kwargs):
        raise AssertionError("a finished run was run again")

    monkeypatch.setattr(pipeline, "run", no_new_runs)
    assert reproduce.main(argv) == 0
    again = json.loads((tmp / "out.json").read_text())
    assert again["runs"] == first["runs"]  # same summaries, not new runs (their times would differ)


def test_a_finished_run_of_another_config_is_not_mixed_in(reproduce, finished, monkeypatch, capsys) -> None:
    tmp, argv, _ = finished
    from binas.workflows import run as pipeline

    monkeypatch.setattr(pipeline, "run", lambda *a, **k: pytest.fail("a finished run was overwritten"))
    other = [*argv[: argv.index("--out")], "--out", str(tmp / "other"), *TINY, "--set", "train.epochs=2"]
    assert reproduce.main(other) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "another config" in err and "train.epochs" in err


def test_unknown_row_is_an_error(reproduce, capsys) -> None:
    with pytest.raises(SystemExit):
        reproduce.main(["--only", "no-such-method"])
    assert "unknown row" in capsys.readouterr().err
