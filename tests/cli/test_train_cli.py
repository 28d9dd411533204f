"""`binas train`, `binas eval`, `binas export` and `python -m binas` end to end on tiny digits runs."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

from binas.cli.main import EXIT_USAGE, main
from binas.config.io import dump_yaml
from binas.config.schema import DataConfig, RunConfig, SpaceConfig
from binas.genotype import get_genotype

TINY = [
    "--device",
    "cpu",
    "--epochs",
    "1",
    "--channels",
    "4",
    "--layers",
    "3",
    "--set",
    "data.image_size=8",
    "--set",
    "data.max_train_samples=64",
    "--set",
    "num_threads=1",
    "--quiet",
]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("train")
    assert main(["train", "darts-v2", "--out", str(out), *TINY]) == 0
    return str(out)


def test_train_prints_results_and_writes_summary(trained, capsys):
    summary = json.loads(open(f"{trained}/summary.json").read())
    assert {"top1", "top5", "params", "ops", "memory_mbit", "flops", "bops"} <= set(summary)
    code, out, _ = run_cli(capsys, "train", "--resume", trained)  # a finished run resumes to the same result
    assert code == 0 and "step1" in out and "step2" in out and f"top1 {summary['top1']:.2f}" in out


def test_eval_table_and_json(trained, capsys):
    code, out, _ = run_cli(capsys, "eval", trained, "--json", "--quiet")
    report = json.loads(out)
    assert code == 0 and {"top1", "top5", "loss", "params", "flops", "bops", "ops", "memory_mbit"} <= set(report)
    summary = json.loads(open(f"{trained}/summary.json").read())
    assert report["top1"] == pytest.approx(summary["top1"]) and report["params"] == summary["params"]
    code, out, _ = run_cli(capsys, "eval", f"{trained}/checkpoint.pt", "--quiet")
    assert code == 0 and "top-1" in out and "BOPs" in out


def test_export_formats(trained, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "export", trained, "--format", "packed", "--out", str(tmp_path / "m.bin"), "--json")
    report = json.loads(out)
    assert code == 0 and report["file_bytes"] == (tmp_path / "m.bin").stat().st_size
    assert report["estimate_mbit"] == pytest.approx(
        report["binary_weight_bits"] / 1e6 + report["scale_bits"] / 1e6 + report["real_param_bits"] / 1e6
    )
    code, out, _ = run_cli(capsys, "eval", str(tmp_path / "m.bin"), "--json", "--quiet")  # the deployed form
    assert code == 0 and json.loads(out)["samples"] > 0 and json.loads(out)["bops"] > 0
    code, out, _ = run_cli(capsys, "export", trained, "--quiet")
    assert code == 0 and "model.onnx" in out and "Mbit" in out


def test_bad_checkpoints_are_one_line_errors(trained, tmp_path, capsys):
    good = open(f"{trained}/model.pt", "rb").read()
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    torch.save({"conv.weight": torch.zeros(2)}, tmp_path / "foreign.pt")
    cases = [
        (["eval", str(tmp_path / "truncated.pt")], "truncated.pt"),
        (["eval", str(tmp_path / "foreign.pt")], "not a binas checkpoint"),
        (["export", str(tmp_path / "missing.pt")], "not found"),
        (["eval", str(tmp_path)], "no model.pt"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(capsys, *argv)
        assert code == EXIT_USAGE and message in err and err.count("\n") == 1, (argv, err)
    cut = tmp_path / "run"
    cut.mkdir()
    for name in ("config.yaml", "genotype.json"):
        (cut / name).write_bytes(open(f"{trained}/{name}", "rb").read())
    (cut / "checkpoint.pt").write_bytes(good[:100])
    code, _, err = run_cli(capsys, "train", "--resume", str(cut))
    assert code == EXIT_USAGE and "checkpoint.pt" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train"], "give a genotype"),
        (["train", "darts-v2", "--resume", "x"], "not both"),
        (["train", "nosuch-genotype", "--epochs", "1"], "cannot read genotype"),
        (["train", "darts-v2", "--set", "train.optim.name=lion"], "train.optim.name"),
        (["train", "darts-v2", "--set", "train.batch_size=0"], "train"),
    ],
)
def test_train_input_errors(argv, message, capsys, tmp_path):
    code, _, err = run_cli(capsys, *argv, "--out", str(tmp_path))
    assert code == EXIT_USAGE and message in err


def test_a_search_run_directory_lends_its_data_and_space(tmp_path, capsys):
    search = tmp_path / "search"
    search.mkdir()
    dump_yaml(
        RunConfig(data=DataConfig(image_size=8, max_train_samples=64), space=SpaceConfig(family="dcp")),
        search / "config.yaml",
    )
    get_genotype("darts-v1").save(search / "genotype.json")
    code, _, _ = run_cli(
        capsys,
        "train",
        str(search),
        "--out",
        str(tmp_path / "out"),
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--channels",
        "4",
        "--layers",
        "3",
        "--set",
        "num_threads=1",
        "--quiet",
        "--one-step",
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert code == 0 and summary["network"]["family"] == "dcp" and summary["network"]["image_size"] == 8
    assert list(summary["phases"]) == ["train"]


def test_python_dash_m_binas(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["binas", "profile", "darts-v2", "--json"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("binas", run_name="__main__")
    assert done.value.code == 0 and json.loads(capsys.readouterr().out)["params"] > 0


def test_profile_of_a_training_run_is_the_network_it_trained(trained, capsys):
    summary = json.loads((Path(trained) / "summary.json").read_text())
    code, out, _ = run_cli(capsys, "profile", trained, "--json")
    prof = json.loads(out)
    assert code == 0 and prof["params"] == summary["params"] and prof["ops"] == summary["ops"]
    code, _, err = run_cli(capsys, "profile", trained, "--channels", "36")
    assert code == 2 and "profiled as trained" in err and "--channels" in err and err.count("\n") == 1
    code, out, _ = run_cli(capsys, "profile", str(Path(trained) / "genotype.json"), "--dataset", "digits", "--json")
    assert code == 0 and json.loads(out)["params"] > 0  # a genotype at another shape, on digits-sized input
