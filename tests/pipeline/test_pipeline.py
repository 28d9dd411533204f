"""`binas.workflows.run.run`: the run directory layout, the summary, and runs never overwriting each other."""

from __future__ import annotations

import dataclasses
import json

import pytest

from binas.config.train import NetConfig, OptimConfig, TrainConfig
from binas.engine.rundir import make_run_dir
from binas.errors import BinasError
from binas.genotype import Genotype
from binas.workflows import run as pipeline
from binas.workflows.compare import load_summary
from tests.conftest import tiny_run_config


def test_search_only_run_lays_out_the_run_directory(tmp_path):
    result = pipeline.run(tiny_run_config("darts", epochs=2), tmp_path / "r", train=False, progress=False)
    run = tmp_path / "r"
    for name in (
        "config.yaml",
        "log.txt",
        "summary.json",
        "genotype.json",
        "search/metrics.jsonl",
        "search/genotype.json",
        "search/checkpoint.pt",
        "plots/search_curves.png",
        "plots/search_alpha.png",
        "plots/normal.png",
    ):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == "darts" and summary["dataset"] == "digits" and summary["search_epochs"] == 2
    assert summary["archid"] == Genotype.load(run / "genotype.json").archid == result.search.genotype.archid
    assert summary["top1"] is None and load_summary(run)["run"] == "r"
    assert "binas run: darts on digits" in (run / "log.txt").read_text()


def test_runs_never_overwrite_each_other(tmp_path):
    first = make_run_dir(tmp_path, "darts")
    second = make_run_dir(tmp_path, "darts")
    assert first != second
    cfg = tiny_run_config("random", epochs=1)
    pipeline.run(cfg, first, train=False, plots=False, progress=False)
    before = (first / "summary.json").read_text()
    with pytest.raises(BinasError, match="already holds a run"):
        pipeline.run(cfg, first, train=False, plots=False, progress=False)
    pipeline.run(cfg, second, train=False, plots=False, progress=False)
    assert (first / "summary.json").read_text() == before and (second / "summary.json").exists()


def test_default_method_prefers_dcp_nas():
    """A config that names no method (no --method, no search.method in the file) searches with DCP-NAS."""
    from binas.config.io import from_dict
    from binas.config.schema import RunConfig
    from binas.strategies import STRATEGIES, resolve_method_options

    assert RunConfig().search.method == from_dict(RunConfig, {"search": {"epochs": 1}}).search.method == "dcp-nas"
    assert "dcp-nas" in STRATEGIES.names()
    assert resolve_method_options(RunConfig()).search.method == "dcp-nas"  # registered, its options resolve


def test_full_run_trains_and_reports_accuracy_and_size(tmp_path):
    cfg = tiny_run_config("darts", epochs=1)
    train = TrainConfig(
        epochs=1,
        batch_size=32,
        two_step=False,
        amp=False,
        optim=OptimConfig(warmup_epochs=0),
        net=NetConfig(channels=4, layers=3),
    )
    result = pipeline.run(dataclasses.replace(cfg, train=train), tmp_path / "r", progress=False)
    summary = result.summary
    assert summary["top1"] is not None and summary["params"] and summary["train_seconds"] is not None
    assert summary["top1"] == result.train.top1 and summary["train_epochs"] == 1
    assert (tmp_path / "r" / "train" / "metrics.jsonl").exists()
    assert (tmp_path / "r" / "plots" / "train_curves.png").exists()
