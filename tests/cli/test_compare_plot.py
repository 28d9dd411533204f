"""`binas compare` (markdown / csv, missing values as `-`) and `binas plot`, with their error paths."""

from __future__ import annotations

import json

from binas.cli.main import EXIT_USAGE, main
from binas.workflows.compare import SUMMARY_KEYS, load_summary
from tests.plots.test_plots import fake_search_dir


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def make_run(path, **summary):
    path.mkdir()
    (path / "summary.json").write_text(json.dumps(summary))
    return str(path)


def test_compare_markdown_and_csv(tmp_path, capsys):
    a = make_run(
        tmp_path / "a",
        method="dcp-nas",
        dataset="digits",
        archid="abc",
        policy="strict",
        top1=91.234,
        top5=99.0,
        params=123456,
        ops=2.5e6,
        memory_mbit=0.5,
        search_seconds=10.0,
        train_seconds=20.0,
    )
    b = make_run(tmp_path / "b", method="darts", dataset="digits", archid="def", top1=None)
    code, out, _ = run_cli(capsys, "compare", a, b)
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 4 and lines[0].startswith("| run")
    assert "91.23" in lines[2] and "| 123,456 |" in lines[2] and "| 2.5 " in lines[2]  # params a count, OPs in M
    assert "1-bit (strict)" in lines[2]
    assert lines[3].count("| -") == 8  # network, top1 (null), top5, params, ops, Mbit, search s, train s
    code, out, _ = run_cli(capsys, "compare", a, b, "--format", "csv")
    rows = out.strip().splitlines()
    assert rows[0].split(",") == list(SUMMARY_KEYS) and rows[2].startswith("b,darts,digits,,def,,")
    assert rows[1].split(",")[SUMMARY_KEYS.index("params")] == "123456"  # CSV keeps exact values
    assert rows[1].split(",")[SUMMARY_KEYS.index("ops")] == "2500000.0"


def test_compare_skips_unfinished_runs_with_a_note(tmp_path, capsys, caplog):
    done = make_run(tmp_path / "done", method="darts", dataset="digits", archid="abc", top1=50.0)
    (tmp_path / "killed").mkdir()
    (tmp_path / "killed" / "metrics.jsonl").write_text("")
    code, out, _ = run_cli(capsys, "compare", done, str(tmp_path / "killed"))
    assert code == 0 and len(out.strip().splitlines()) == 3 and "| done " in out
    assert "skipped" in caplog.text and "killed" in caplog.text


def test_compare_reads_a_search_only_directory(tmp_path):
    fake_search_dir(tmp_path)
    (tmp_path / "search_summary.json").write_text(json.dumps({"method": "darts", "archid": "x", "search_seconds": 3}))
    assert load_summary(tmp_path) == {
        "run": tmp_path.name,
        "method": "darts",
        "archid": "x",
        "search_seconds": 3,
        "dataset": None,
    }


def test_compare_errors_are_one_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, "compare", str(tmp_path / "missing"))
    assert code == EXIT_USAGE and "run directory not found" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "compare", str(tmp_path))
    assert code == EXIT_USAGE and "no summary.json" in err
    (tmp_path / "summary.json").write_text("[1, 2")
    code, _, err = run_cli(capsys, "compare", str(tmp_path))
    assert code == EXIT_USAGE and "cannot read" in err and err.count("\n") == 1


def test_plot_redraws_into_plots(tmp_path, capsys):
    fake_search_dir(tmp_path)
    code, out, _ = run_cli(capsys, "plot", str(tmp_path))
    assert code == 0 and str(tmp_path / "plots" / "search_curves.png") in out
    code, out, _ = run_cli(capsys, "plot", str(tmp_path), "--to", str(tmp_path / "elsewhere"))
    assert code == 0 and (tmp_path / "elsewhere" / "normal.png").exists()


def test_plot_errors_are_one_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, "plot", str(tmp_path / "missing"))
    assert code == EXIT_USAGE and "not found" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "plot", str(tmp_path))
    assert code == EXIT_USAGE and "nothing to plot" in err
