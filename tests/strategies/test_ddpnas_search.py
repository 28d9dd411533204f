"""DDPNAS end to end on the tiny DARTS space: pruning to one op per edge, the run-directory records,
options and the step LR schedule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from binas import api
from binas.engine.metrics_log import read_metrics
from binas.errors import ConfigError
from binas.genotype import Genotype, derive
from binas.strategies.ddpnas import step_lr
from binas.strategies.ddpnas_distribution import schedule_length
from tests.conftest import tiny_run_config


@pytest.fixture
def no_checkpoints(monkeypatch):
    """Skip the per-epoch checkpoint writes of long schedules (resume is tested by the generic suite)."""
    monkeypatch.setattr("binas.engine.searcher.save_checkpoint", lambda *args, **kwargs: None)


def test_darts_search_prunes_to_one_op_per_edge_and_records_everything(tmp_path, no_checkpoints):
    result = api.search(tiny_run_config("ddpnas", rounds_per_prune=1), tmp_path, progress=False)
    assert result.epochs == schedule_length(8, 1) == 35
    theta = json.loads((tmp_path / "theta.json").read_text())
    alive = np.array(theta["alive"])
    assert theta["space"] == "darts" and alive.shape == (28, 8) and (alive.sum(axis=1) == 1).all()
    survivors = np.where(alive, np.array(theta["theta"]), 0.0)
    try:  # the genotype is the survivors whenever they form a valid DARTS cell (spec §7 note (a))
        assert result.genotype == derive(survivors[:14], survivors[14:])
    except Exception as err:  # a node left without two non-`none` survivors: derive refuses
        assert "usable op" in str(err)
    assert isinstance(result.genotype, Genotype)
    pruning = json.loads((tmp_path / "pruning.json").read_text())["cycles"]
    assert len(pruning) == 7 and all(len(c["pruned"]) == 28 for c in pruning)
    samples = json.loads((tmp_path / "samples.json").read_text())["samples"]
    assert len(samples) == 35 and all(0.0 <= s["val_acc"] <= 1.0 and len(s["ops"]) == 28 for s in samples)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert len(records) == 35 and np.array(records[-1]["theta"]).shape == (28, 8)
    assert records[-1]["alive_ops"] == 1.0


def test_step_schedule_decays_at_round_boundaries():
    ends = [3, 7, 11, 14, 17, 20]
    lrs = [step_lr(e, ends, 0.1, 1e-4, period=6) for e in range(22)]
    # Decays after the first round end at or past 6 (epoch 7), 12 (epoch 14) and 18 (epoch 20).
    assert lrs[:8] == [0.1] * 8
    assert lrs[8] == lrs[14] == pytest.approx(0.01)
    assert lrs[15] == lrs[20] == pytest.approx(0.001) and lrs[21] == pytest.approx(1e-4)


def test_step_lr_option_runs(tmp_path):
    cfg = tiny_run_config("ddpnas", rounds_per_prune=1, lr_schedule="step", lr_step_epochs=2, max_epochs=9)
    result = api.search(cfg, tmp_path, progress=False)
    lrs = [r["lr"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert result.epochs == 9 and lrs[:8] == [lrs[0]] * 8 and lrs[8] == pytest.approx(lrs[0] / 10)


@pytest.mark.parametrize("options, message", [
    ({"rounds_per_prune": 0}, "rounds_per_prune"),
    ({"gamma": 1.5}, "gamma"),
    ({"update": "adam"}, "update"),
    ({"max_epochs": 0}, "max_epochs"),
])
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        api.resolve_search_options(tiny_run_config("ddpnas", **options))
