"""DDPNAS end to end on the tiny mobile space: real and 1-bit searches, and the four update rules."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from binas.engine.metrics_log import read_metrics
from binas.genotype.mobilenet import MobileGenotype
from binas.space.mobilenet import MobileNetConfig
from binas.strategies.ddpnas_distribution import schedule_length
from binas.workflows import search as api
from tests.conftest import tiny_run_config

#: The smallest mobile space: 6 searchable blocks of <= 80 channels.
TINY_MOBILE = MobileNetConfig(width_mult=0.25, depth=1)


def mobile_config(**options):
    cfg = tiny_run_config("ddpnas", **{"rounds_per_prune": 1, "epochs": None, **options})  # epochs: a cap
    return dataclasses.replace(cfg, space=dataclasses.replace(cfg.space, kind="mobilenet", mobilenet=TINY_MOBILE))


@pytest.fixture
def no_checkpoints(monkeypatch):
    """Skip the per-epoch checkpoint writes of long schedules (resume is tested by the generic suite)."""
    monkeypatch.setattr("binas.engine.searcher.save_checkpoint", lambda *args, **kwargs: None)


@pytest.mark.parametrize("binary", [False, True], ids=["real", "binary"])
def test_mobile_search_finishes_with_a_mobile_genotype(tmp_path, binary, no_checkpoints):
    result = api.search(mobile_config(binary=binary), tmp_path, progress=False)
    assert result.epochs == schedule_length(7, 1) == 27
    genotype = MobileGenotype.load(tmp_path / "genotype.json")
    assert genotype == result.genotype and len(genotype.blocks) == 6
    theta = json.loads((tmp_path / "theta.json").read_text())
    alive = np.array(theta["alive"])
    assert (alive.sum(axis=1) == 1).all()
    names = [row[int(np.argmax(a))] for row, a in zip(theta["op_names"], alive)]
    assert str(genotype) == "mobilenet: " + " ".join(names)
    assert theta["binary"] is binary
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert len(records) == 27 and np.array(records[0]["theta"]).shape == (6, 7)
    assert records[-1]["genotype"] == genotype.to_dict()


def test_update_rules_all_run_and_differ(tmp_path, no_checkpoints):
    thetas = {}
    for update in ("momentum", "momentum_to_one", "score_decay", "mdenas"):  # one cycle (7 epochs) each
        api.search(mobile_config(update=update, epochs=7), tmp_path / update, progress=False)
        thetas[update] = np.array(json.loads((tmp_path / update / "theta.json").read_text())["theta"])
    assert not np.allclose(thetas["momentum"], thetas["score_decay"])
    assert not np.allclose(thetas["momentum"], thetas["mdenas"])
    # No parametric / non-parametric groups on the mobile space: the V3 cap never acts there.
    assert np.array_equal(thetas["momentum"], thetas["momentum_to_one"])
