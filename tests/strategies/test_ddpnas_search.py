"""DDPNAS end to end on the tiny DARTS space: the original V3 stop (one op of each group per edge), the
run-directory records, options, the genotype of two survivors and the step LR schedule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from binas.engine.metrics_log import read_metrics
from binas.engine.runtime import setup_runtime
from binas.errors import ConfigError
from binas.genotype import derive
from binas.space.primitives import PARAMETRIC, PRIMITIVES
from binas.strategies import resolve_method_options
from binas.strategies.ddpnas import step_lr
from binas.strategies.ddpnas_distribution import schedule_length
from binas.strategies.ddpnas_spaces import ranked_weights
from binas.workflows import search as api
from tests.conftest import tiny_run_config


@pytest.fixture
def no_checkpoints(monkeypatch):
    """Skip the per-epoch checkpoint writes of long schedules (resume is tested by the generic suite)."""
    monkeypatch.setattr("binas.engine.searcher.save_checkpoint", lambda *args, **kwargs: None)


def test_darts_search_stops_with_one_op_of_each_group_and_records_everything(tmp_path, no_checkpoints):
    """The default rule is the original V3: 6 cycles (P x 33 epochs), then per edge one parametric and
    one non-parametric op; the genotype takes the alive op of higher theta (never `none`)."""
    result = api.search(tiny_run_config("ddpnas", epochs=None, rounds_per_prune=1), tmp_path, progress=False)
    assert result.epochs == schedule_length(8, 1, final_ops=2) == 33
    theta = json.loads((tmp_path / "theta.json").read_text())
    alive = np.array(theta["alive"])
    assert theta["space"] == "darts" and alive.shape == (28, 8) and theta["final_ops_per_edge"] == 2
    parametric = np.array([op in PARAMETRIC for op in PRIMITIVES])
    assert (alive[:, parametric].sum(axis=1) == 1).all() and (alive[:, ~parametric].sum(axis=1) == 1).all()
    survivors = np.where(alive, np.array(theta["theta"]), 0.0)  # the reference's parse over the alive ops
    assert result.genotype == derive(survivors[:14], survivors[14:])
    pruning = json.loads((tmp_path / "pruning.json").read_text())["cycles"]
    assert len(pruning) == 6 and all(len(c["pruned"]) == 28 for c in pruning)
    for e in range(28):  # never a 4th op of a group
        pruned = [c["pruned"][e] for c in pruning]
        assert sum(op in PARAMETRIC for op in pruned) == 3
    samples = json.loads((tmp_path / "samples.json").read_text())["samples"]
    assert len(samples) == 33 and all(0.0 <= s["val_acc"] <= 1.0 and len(s["ops"]) == 28 for s in samples)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert len(records) == 33 and np.array(records[-1]["theta"]).shape == (28, 8)
    assert records[-1]["alive_ops"] == 2.0


@pytest.mark.parametrize(
    "space, update, final_ops, epochs",
    [
        ("darts", "momentum", 2, 33),
        ("darts", "momentum_to_one", 1, 35),
        ("darts", "score_decay", 1, 35),
        ("mobilenet", "momentum", 1, 27),  # no parametric / non-parametric split on the mobile space
    ],
)
def test_update_rule_sets_the_stop_and_schedule(space, update, final_ops, epochs):
    cfg = tiny_run_config("ddpnas", epochs=None, rounds_per_prune=1, update=update)  # the whole schedule
    if space == "mobilenet":
        from tests.strategies.test_ddpnas_mobile_search import mobile_config

        cfg = mobile_config(update=update)
    strategy = api.build_strategy(cfg, setup_runtime("cpu", 0, num_threads=1))
    assert strategy.dist.final_ops == final_ops and strategy.num_epochs() == epochs


def test_genotype_of_two_ops_per_edge_is_the_higher_theta_alive_op():
    """Original V3 end state: per edge the alive op of higher theta, the parametric one when the other
    survivor is `none`; node inputs ranked by that theta, pruned ops never used."""
    rng = np.random.default_rng(0)
    theta = rng.uniform(0.01, 0.2, size=(28, 8))
    alive = np.zeros((28, 8), dtype=bool)
    for e in range(28):
        alive[e, rng.integers(0, 4)] = True  # one of none / pools / skip
        alive[e, rng.integers(4, 8)] = True  # one conv
    theta[~alive] += 0.5  # pruned ops with higher theta must not matter
    weights = ranked_weights(theta, alive)
    genotype = derive(weights[:14], weights[14:])
    usable = np.where(alive & (np.arange(8) != PRIMITIVES.index("none")), theta, 0.0)
    assert genotype == derive(usable[:14], usable[14:])  # the DARTS parse of theta over the alive ops
    for cell, offset in ((genotype.normal, 0), (genotype.reduce, 14)):
        for i, (op, _) in enumerate(cell):
            e = offset + _edge_index(cell, i)
            assert alive[e, PRIMITIVES.index(op)] and PRIMITIVES.index(op) == int(usable[e].argmax())


def _edge_index(cell, i: int) -> int:
    """DARTS edge index of the i-th (op, input) pair of a cell (node i // 2 + 2)."""
    node, src = i // 2, cell[i][1]
    return sum(range(2, node + 2)) + src


def test_step_schedule_decays_at_round_boundaries():
    ends = [3, 7, 11, 14, 17, 20]
    lrs = [step_lr(e, ends, 0.1, 1e-4, period=6) for e in range(22)]
    # Decays after the first round end at or past 6 (epoch 7), 12 (epoch 14) and 18 (epoch 20).
    assert lrs[:8] == [0.1] * 8
    assert lrs[8] == lrs[14] == pytest.approx(0.01)
    assert lrs[15] == lrs[20] == pytest.approx(0.001) and lrs[21] == pytest.approx(1e-4)


def test_step_lr_option_runs(tmp_path):
    cfg = tiny_run_config("ddpnas", rounds_per_prune=1, lr_schedule="step", lr_step_epochs=2, epochs=9)
    result = api.search(cfg, tmp_path, progress=False)
    lrs = [r["lr"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert result.epochs == 9 and lrs[:8] == [lrs[0]] * 8 and lrs[8] == pytest.approx(lrs[0] / 10)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"rounds_per_prune": 0}, "rounds_per_prune"),
        ({"gamma": 1.5}, "gamma"),
        ({"update": "adam"}, "update"),
        ({"update": "V3"}, "momentum_to_one"),  # the message lists every rule
    ],
)
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message) as err:
        resolve_method_options(tiny_run_config("ddpnas", **options))
    assert "\n" not in str(err.value)
