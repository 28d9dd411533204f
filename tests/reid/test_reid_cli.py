"""`binas reid` end to end on a tiny digits-reid run: run dir, summary, resume of a killed run, errors."""

from __future__ import annotations

import json

import pytest
import torch

import binas.workflows.reid as reid_workflow
from binas.cli.main import EXIT_USAGE, main
from binas.config.preset_files import get_preset
from binas.config.reid import ReidConfig, load_reid_config
from binas.nets.reid import load_reid_model

TINY = [
    "--device", "cpu", "--epochs", "2", "--backbone", "darts-v2", "--quiet",
    "--set", "data.max_train_ids=12", "--set", "data.max_test_ids=30",
    "--set", "model.channels=4", "--set", "model.layers=3",
    "--set", "train.ids_per_batch=4", "--set", "train.images_per_id=2", "--set", "train.eval_every=0",
]  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("reid") / "run"
    assert main(["reid", "--out", str(out), *TINY]) == 0
    return out


def test_reid_writes_run_dir_and_summary(finished, capsys):
    names = {p.name for p in finished.iterdir()}
    expected = {"config.yaml", "genotype.json", "metrics.jsonl", "checkpoint.pt", "step1.pt", "model.pt"}
    assert expected | {"summary.json", "curves.png", "log.txt"} <= names
    summary = json.loads((finished / "summary.json").read_text())
    assert {"rank1", "rank5", "rank10", "mAP", "seconds"} <= set(summary) and summary["stand_in"] is True
    assert {"params", "ops", "memory_mbit"} <= set(summary["backbone_profile"])
    assert summary["policy"] == "released" and set(summary["phases"]) == {"step1", "step2"}
    model, spec, _ = load_reid_model(finished)
    assert spec.num_ids == 12 and model.embed(torch.zeros(2, 3, 16, 16)).shape == (2, model.dim)
    lines = [json.loads(line) for line in (finished / "metrics.jsonl").read_text().splitlines()]
    assert [r["global_epoch"] for r in lines] == [0, 1, 2, 3]
    code = main(["reid", "--resume", str(finished), "--quiet"])  # a finished run resumes to the same result
    out = capsys.readouterr().out
    assert code == 0 and f"rank-1 {summary['rank1']:.4f}" in out and "stand-in" in out


def test_killed_run_resumes_to_the_uninterrupted_result(finished, tmp_path, monkeypatch, capsys):
    real_save, calls = reid_workflow.save_checkpoint, []

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:  # killed after step 2's first epoch
            raise KeyboardInterrupt

    monkeypatch.setattr(reid_workflow, "save_checkpoint", save_then_die)
    out = tmp_path / "killed"
    assert main(["reid", "--out", str(out), *TINY]) == 130
    monkeypatch.setattr(reid_workflow, "save_checkpoint", real_save)
    assert "binas reid --resume" in capsys.readouterr().err
    assert main(["reid", "--resume", str(out), "--quiet"]) == 0
    a, b = (json.loads((d / "summary.json").read_text()) for d in (finished, out))
    assert (a["rank1"], a["mAP"]) == (b["rank1"], b["mAP"])
    wa, wb = (load_reid_model(d)[0].state_dict() for d in (finished, out))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    cases = [
        (["reid", "--dataset", "market1501", "--out", str(tmp_path / "a")], "--data-dir"),
        (["reid", "--set", "train.ids_per_batch=1", "--out", str(tmp_path / "b")], "ids_per_batch"),
        (["reid", "--set", "model.bogus=1", "--out", str(tmp_path / "c")], "unknown key"),
        (["reid", "--resume", str(tmp_path / "none")], "not a reid run directory"),
        (["reid", "--backbone", "no-such-genotype", "--out", str(tmp_path / "d")], "cannot read genotype"),
        (["reid", "--real", "--teacher", "self-real", "--out", str(tmp_path / "e")], "self-real"),
    ]
    for argv, message in cases:
        assert main([*argv, "--quiet"]) == EXIT_USAGE
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_nan_loss_is_a_one_line_error(tmp_path, capsys):
    argv = ["reid", "--out", str(tmp_path / "nan"), *TINY, "--set", "optim.lr=1e30", "--real"]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert "became" in err and len(err.splitlines()) == 1


def test_presets_load_strictly():
    for name in ("digits_reid", "market1501_reid"):
        cfg = load_reid_config(get_preset(name).path)
        assert isinstance(cfg, ReidConfig)
    market = load_reid_config(get_preset("market1501_reid").path)
    assert (market.data.height, market.data.width, market.train.ids_per_batch, market.train.images_per_id) == (
        256,
        128,
        16,
        4,
    )
    assert load_reid_config(get_preset("digits_reid").path) == ReidConfig()


def _tiny(epochs: str) -> list[str]:
    return [epochs if a == "2" and i == TINY.index("--epochs") + 1 else a for i, a in enumerate(TINY)]


def test_self_real_teacher_is_trained_first_and_distilled(tmp_path):
    out = tmp_path / "kd"
    assert main(["reid", "--out", str(out), *_tiny("1"), "--teacher", "self-real"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["phases"]) == ["teacher", "step1", "step2"] and (out / "teacher.pt").is_file()
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "train_kd_loss" not in lines[0] and all("train_kd_loss" in r for r in lines[1:])


def test_finished_run_as_teacher_of_a_real_student(finished, tmp_path):
    out = tmp_path / "student"
    assert main(["reid", "--out", str(out), *_tiny("1"), "--real", "--teacher", str(finished)]) == 0
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["phase"] == "train" and lines[0]["train_kd_loss"] >= 0
