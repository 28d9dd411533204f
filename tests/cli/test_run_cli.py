"""`binas run`: one command to a finished run directory, and its one-line errors (exit status 2)."""

from __future__ import annotations

import json

import pytest

from binas.cli.main import EXIT_USAGE, main
from tests.cli.flags import TINY, TINY_TRAIN


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_search_only_prints_the_table_and_the_run_dir(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, _ = run_cli(
        capsys,
        "run",
        "--method",
        "random",
        "--epochs",
        "1",
        "--search-only",
        "--no-plots",
        "--out",
        str(out_dir),
        "--quiet",
        *TINY,
    )
    assert code == 0
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["method"] == "random"
    assert out.splitlines()[0].startswith("| method | network | archid") and summary["archid"] in out
    assert out.strip().endswith(f"run dir: {out_dir}")
    assert (out_dir / "log.txt").exists() and not (out_dir / "plots").exists()


def test_run_takes_the_method_from_the_config_file(tmp_path, capsys):
    config = tmp_path / "my.yaml"
    config.write_text("search:\n  method: random\n  epochs: 1\n")
    code, _, _ = run_cli(
        capsys,
        "run",
        "--config",
        str(config),
        "--search-only",
        "--no-plots",
        "--out",
        str(tmp_path / "run"),
        "--quiet",
        *TINY,
    )
    assert code == 0 and json.loads((tmp_path / "run" / "summary.json").read_text())["method"] == "random"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "no-such-method"], "no-such-method"),
        (["--set", "search.epochs=abc"], "search.epochs: expected an int"),
        (["--set", "search.epochs"], "malformed override"),
        (["--set", "serch.epochs=3"], "unknown key 'serch'"),
        (["--set", "search.options.no_such_option=1"], "unknown key 'search.options.no_such_option'"),
        (["--config", "no_such_preset"], "no preset named 'no_such_preset'"),
    ],
)
def test_run_input_errors_are_one_line(tmp_path, capsys, argv, message):
    code, _, err = run_cli(capsys, "run", "--method", "darts", *argv, "--out", str(tmp_path / "run"), "--quiet")
    assert code == EXIT_USAGE and message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()  # nothing is created before the config is valid


def test_run_with_a_preset_needing_data_names_the_problem(tmp_path, capsys):
    code, _, err = run_cli(
        capsys,
        "run",
        "--config",
        "darts_cifar10_search",
        "--out",
        str(tmp_path / "run"),
        "--quiet",
        "--set",
        "data.data_dir=" + str(tmp_path / "no-cifar"),
    )
    assert code == EXIT_USAGE and err.count("\n") == 1 and "no-cifar" in err


@pytest.mark.slow
def test_full_run_prints_accuracy(tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        "run",
        "--method",
        "darts",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "run"),
        "--quiet",
        *TINY,
        *TINY_TRAIN,
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert code == 0 and summary["top1"] is not None and f"{summary['top1']:.2f}" in out


def test_run_mirrors_each_metrics_file_to_tensorboard_exactly_once(tmp_path, capsys):
    """`binas run` composes search and train under the CLI's one TensorBoard sink: one event file per metrics
    file, each record's scalars once at its step (two sinks used to write every point twice)."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from binas.engine.metrics_log import STEP_KEYS, read_metrics, scalars
    from binas.run_files import METRICS_FILE, TENSORBOARD_DIR

    out_dir = tmp_path / "run"
    code, _, _ = run_cli(
        capsys,
        "run",
        "--method",
        "darts",
        "--epochs",
        "2",
        "--no-plots",
        "--out",
        str(out_dir),
        "--quiet",
        *TINY,
        *TINY_TRAIN,
    )
    assert code == 0
    tb_dirs = sorted(out_dir.rglob(TENSORBOARD_DIR))
    assert [d.relative_to(out_dir).as_posix() for d in tb_dirs] == ["search/tb", "train/tb"]
    for tb_dir in tb_dirs:
        expected: dict[str, list[tuple[int, float]]] = {}
        for record in read_metrics(tb_dir.parent / METRICS_FILE):
            step = next(record[k] for k in STEP_KEYS if isinstance(record.get(k), int))
            for name, value in scalars(record).items():
                expected.setdefault(name, []).append((step, value))
        event_files = sorted(tb_dir.iterdir())
        assert len(event_files) == 1, event_files  # exactly one writer per metrics file
        events = EventAccumulator(str(event_files[0]), purge_orphaned_data=False)
        events.Reload()
        written = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
        assert sorted(written) == sorted(expected) and "train_loss" in written, tb_dir
        for tag, points in written.items():
            assert [s for s, _ in points] == [s for s, _ in expected[tag]], (tb_dir, tag)  # each step once
            assert [v for _, v in points] == pytest.approx([v for _, v in expected[tag]], rel=1e-6), (tb_dir, tag)
    assert len(read_metrics(out_dir / "search" / METRICS_FILE)) == 2  # two search epochs: steps 0 and 1
