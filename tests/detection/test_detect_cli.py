"""`binas detect` end to end on a tiny config: run directory, summary, PNGs, resume, one-line errors."""

from __future__ import annotations

import json

import pytest

from binas.cli.main import main
from binas.config.detect import DetectConfig
from binas.config.io import from_dict, load_yaml
from binas.config.preset_files import list_presets
from binas.run_files import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, MODEL_FILE, SUMMARY_FILE

TINY = [
    "--device", "cpu", "--epochs", "1", "--batch-size", "16",
    "--set", "model.channels=4", "--set", "model.layers=3",
    "--set", "model.neck_channels=8", "--set", "model.head_channels=8",
    "--set", "data.max_train_images=32", "--set", "data.max_test_images=8",
    "--set", "train.num_drawn=2",
]  # fmt: skip


def test_binary_run_writes_its_directory_and_resumes_after_a_kill(tmp_path, monkeypatch, capsys):
    import binas.workflows.detect as workflow

    real_save = workflow.save_detector

    def killed_in_step2(path, *args, **kwargs):
        if path.name == MODEL_FILE:
            raise KeyboardInterrupt
        return real_save(path, *args, **kwargs)

    out = tmp_path / "run"
    monkeypatch.setattr(workflow, "save_detector", killed_in_step2)
    assert main(["detect", *TINY, "--quiet", "--out", str(out)]) == 130
    assert (out / "step1.pt").is_file() and not (out / MODEL_FILE).exists()
    monkeypatch.setattr(workflow, "save_detector", real_save)
    capsys.readouterr()
    assert main(["detect", "--resume", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "mAP50" in printed and str(out) in printed
    for name in (CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, MODEL_FILE, SUMMARY_FILE, "plots/detections.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert set(summary["phases"]) == {"step1", "step2"} and summary["backbone"]["policy"] == "released"
    assert 0.0 <= summary["map"] <= summary["map50"] <= 1.0 and summary["backbone"]["bops"] > 0
    records = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
    assert [(r["phase"], r["global_epoch"]) for r in records] == [("step1", 0), ("step2", 1)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "voc"], "needs --data-dir"),
        (["--dataset", "coco", "--data-dir", "/nonexistent"], "instances_train2017.json"),
        (["--config", "digits_detekt"], "digits_detect"),
        (["--set", "train.epochs=zero"], "train.epochs"),
    ],
)
def test_bad_inputs_give_one_line_errors(argv, message, tmp_path, capsys):
    assert main(["detect", "--device", "cpu", "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("preset", [p for p in list_presets() if p.name.endswith("_detect")], ids=lambda p: p.name)
def test_detection_presets_load_strictly(preset):
    cfg = from_dict(DetectConfig, load_yaml(preset.path))
    assert cfg.data.name in {"digits-detection", "voc", "coco"} and preset.description


def test_a_nan_loss_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    import torch

    import binas.workflows.detect_phase as phase

    monkeypatch.setattr(phase, "detection_loss", lambda out, *a, **k: (out["heat"].sum() * torch.nan, {}))
    assert main(["detect", *TINY, "--real", "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "train loss became nan" in err and len(err.splitlines()) == 1
