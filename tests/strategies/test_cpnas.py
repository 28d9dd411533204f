"""CP-NAS / BNAS search: sampling without replacement, pruning, indicator options, artifacts, resume."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from binas.engine.loop import EpochLoop, Meter
from binas.engine.metrics_log import read_metrics
from binas.engine.runtime import setup_runtime
from binas.errors import ConfigError
from binas.genotype import Genotype
from binas.space.primitives import PRIMITIVES
from binas.storage.checkpoint import load_checkpoint
from binas.strategies import cpnas_schedule as sched
from binas.strategies import resolve_method_options
from binas.workflows import search as api
from tests.conftest import tiny_run_config

TINY = {"train_steps": 1, "eval_batches": 1}
SMALL_OPS = ("max_pool_3x3", "skip_connect", "sep_conv_3x3")  # 3 + 2 = 5 samples per round count


def _strategy(method: str = "cp-nas", seed: int = 0, **options):
    cfg = dataclasses.replace(tiny_run_config(method, **options), seed=seed)
    return api.build_strategy(cfg, setup_runtime("cpu", seed, num_threads=1))


def _edge0_table(arch):
    """Hand-made accuracies that depend only on the op m of normal edge 0: A_C = 0.05 m and a gap
    A_P - A_C = 0.075 (7 - m). As printed z = 0.05 m + 0.075 beta (7 - m) falls with m for beta = 1
    (z = A_P) and rises for beta = 0.5; penalising the gap it rises."""
    m = int(arch["normal"][0])
    acc_c = 0.05 * m
    return acc_c + 0.075 * (7 - m), acc_c


def _run_fake(strategy, monkeypatch, table=_edge0_table):
    """Run the whole schedule with training skipped and accuracies from `table`; return the sampled
    (kinds, E) op indices of every epoch. The genotype must be valid after every sample."""
    sampled = []

    def evaluate(arch, loop):
        sampled.append(torch.stack([arch["normal"], arch["reduce"]]).cpu())
        acc_p, acc_c = table(arch)
        return (None if strategy.parent is None else acc_p), acc_c

    monkeypatch.setattr(strategy, "_train", lambda arch, loop, epoch: Meter())
    monkeypatch.setattr(strategy, "_evaluate", evaluate)
    for epoch in range(strategy.num_epochs()):
        strategy.run_epoch(epoch, EpochLoop(strategy.ctx.runtime, epoch, 32, progress=False))
        assert isinstance(strategy.genotype(), Genotype)
    return sampled


def test_each_round_samples_every_remaining_op_once_and_pruning_ends_with_one_op(monkeypatch):
    strategy = _strategy(rounds=2)
    sampled = _run_fake(strategy, monkeypatch, table=lambda arch: (0.5, float(arch["reduce"].sum()) / 100))
    assert len(sampled) == sched.schedule_length(8, 2) == strategy.num_epochs() and strategy.finished()
    groups: dict[tuple[int, int], list[torch.Tensor]] = {}
    for i, ops in enumerate(sampled):
        pos = sched.position(i, 8, 2)
        groups.setdefault((pos.stage, pos.round), []).append(ops)
    for (stage, _), samples in groups.items():
        got = torch.stack(samples, dim=-1).sort(dim=-1).values  # (kinds, E, K)
        alive = strategy.table.stage_alive(stage)
        expected = torch.stack([row.nonzero().flatten() for row in alive.reshape(-1, 8)]).reshape(got.shape)
        assert torch.equal(got, expected), f"stage {stage}"
    assert not torch.equal(torch.stack(groups[0, 0]), torch.stack(groups[0, 1]))  # a new order every round
    for stage in range(7):  # every stage removes exactly one op from every edge
        assert ((strategy.table.pruned_at == stage).sum(-1) == 1).all()
    assert (strategy.table.alive.sum(-1) == 1).all() and ((strategy.table.pruned_at == sched.ALIVE).sum(-1) == 1).all()


def test_sampling_order_differs_across_seeds(monkeypatch):
    orders = []
    for seed in (0, 1):
        strategy = _strategy(seed=seed, rounds=1, max_samples=1)
        _run_fake(strategy, monkeypatch)
        orders.append(strategy.table.order)
    assert orders[0] is not None and not torch.equal(orders[0], orders[1])


@pytest.mark.parametrize(
    "method, options, removal_order",
    [
        ("cp-nas", {}, [0, 1, 2, 3, 4, 5, 6]),  # the defaults: beta 0.5 as printed, z = 0.2625 + 0.0125 m
        ("cp-nas", {"indicator_sign": "as_printed", "beta_p": 1.0}, [7, 6, 5, 4, 3, 2, 1]),  # z = A_P
        ("cp-nas", {"indicator_sign": "penalize_gap", "beta_p": 1.0}, [0, 1, 2, 3, 4, 5, 6]),
        ("bnas", {}, [0, 1, 2, 3, 4, 5, 6]),
    ],
)
def test_indicator_variants_prune_in_the_order_of_the_table(method, options, removal_order, monkeypatch):
    strategy = _strategy(method, rounds=2, **options)
    _run_fake(strategy, monkeypatch)
    assert [int((strategy.table.pruned_at[0, 0] == s).nonzero()) for s in range(7)] == removal_order
    survivor = int(strategy.table.alive[0, 0].nonzero())
    node2 = strategy.genotype().normal[:2]
    if PRIMITIVES[survivor] == "none":  # A9 fallback: the runner-up of the last stage feeds node 2
        assert (PRIMITIVES[removal_order[-1]], 0) in node2
    else:
        assert (PRIMITIVES[survivor], 0) in node2


def _parent_fixed(child_slope: float):
    """A_P = 0.5 + 0.02 m for the op m of normal edge 0 (the Parent always ranks the ops 0 < 1 < ... < 7);
    A_C = 0.4 + child_slope m. Only A_C differs between two tables with different slopes."""

    def table(arch):
        m = int(arch["normal"][0])
        return 0.5 + 0.02 * m, 0.4 + child_slope * m

    return table


def _removal_order(strategy) -> list[int]:
    return [int((strategy.table.pruned_at[0, 0] == s).nonzero()) for s in range(7)]


@pytest.mark.parametrize("options", [{}, {"indicator_sign": "penalize_gap"}], ids=["default", "penalize_gap"])
def test_perturbing_child_accuracy_changes_the_pruning_at_the_default_beta(options, monkeypatch):
    """The indicator must depend on the 1-bit Child at the default beta_P: with A_P fixed, reversing how
    A_C ranks the ops of an edge reverses the order in which they are removed. (Default, z = (A_P + A_C)/2:
    slope 0.01 + 0.5 s in m; penalising the gap, z = 1.5 A_C - 0.5 A_P: slope 1.5 s - 0.01.)"""
    orders = {}
    for slope in (0.05, -0.05):  # A_C agrees with A_P / A_C ranks the ops the other way round
        strategy = _strategy(rounds=2, **options)
        _run_fake(strategy, monkeypatch, table=_parent_fixed(slope))
        orders[slope] = _removal_order(strategy)
    assert orders[0.05] == [0, 1, 2, 3, 4, 5, 6]
    assert orders[-0.05] == [7, 6, 5, 4, 3, 2, 1]


def test_beta_one_as_printed_ignores_the_child(monkeypatch):
    """beta_P = 1 as printed is z = A_P: the same perturbation of A_C changes nothing (the old default)."""
    orders, z = [], []
    for slope in (0.05, -0.05):
        strategy = _strategy(rounds=2, beta_p=1.0)
        _run_fake(strategy, monkeypatch, table=_parent_fixed(slope))
        orders.append(_removal_order(strategy))
        z.append(sched.mean_indicator(strategy.table.z[0])[0, 0])
    assert orders[0] == orders[1] == [0, 1, 2, 3, 4, 5, 6]
    assert torch.allclose(z[0], z[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "options, w_child, rho_child, differs",
    [
        ({}, 0.5, 1.0, 1.0),  # z = 0.625 - 0.015 m: ranks like A_C, against A_P
        ({"beta_p": 1.0}, 0.0, -1.0, 0.0),  # z = A_P: the removed op is the one A_P alone removes
        ({"beta_p": 0.0}, 1.0, 1.0, 1.0),  # z = A_C
        ({"beta_p": 0.5, "indicator_sign": "penalize_gap"}, 1.5, 1.0, 1.0),
    ],
)
def test_dependence_metrics_show_which_accuracy_z_follows(options, w_child, rho_child, differs, monkeypatch):
    """A_P = 0.5 + 0.02 m and A_C = 0.75 - 0.05 m (m: the op of normal edge 0) rank the ops in opposite
    orders. With one round every op of every edge holds the z, A_P, A_C of one sample, and each edge's 8
    ops come from the 8 different m, so every edge's rank correlations are +-1."""

    def table(arch):
        m = int(arch["normal"][0])
        return 0.5 + 0.02 * m, 0.75 - 0.05 * m

    strategy = _strategy(rounds=1, max_samples=8, **options)
    _run_fake(strategy, monkeypatch, table=table)
    dep = strategy.epoch_record()["z_dep"]
    assert list(dep) == [
        "spearman_child",
        "spearman_parent",
        "pruned_differs_parent",
        "kendall_child",
        "kendall_parent",
    ]
    assert dep["spearman_child"] == dep["kendall_child"] == pytest.approx(rho_child)
    assert dep["spearman_parent"] == dep["kendall_parent"] == pytest.approx(-rho_child)
    assert dep["pruned_differs_parent"] == differs
    assert sched.indicator_weights(strategy.beta_p, strategy.indicator_sign)[1] == pytest.approx(w_child)


def test_bnas_dependence_has_no_parent_keys(monkeypatch):
    strategy = _strategy("bnas", rounds=1, max_samples=8)
    _run_fake(strategy, monkeypatch)
    assert set(strategy.epoch_record()["z_dep"]) == {"spearman_child", "kendall_child"}
    assert strategy.epoch_record()["z_dep"]["spearman_child"] == pytest.approx(1.0)  # z = A_C


def test_best_guess_during_the_search_follows_the_sampled_architectures(monkeypatch):
    strategy = _strategy(rounds=1, max_samples=1)
    (ops,) = _run_fake(strategy, monkeypatch)  # one sample: its ops carry z > 0, the others nothing yet
    node2 = strategy.genotype().normal[:2]
    for edge in (0, 1):  # node 2's two input edges, from nodes 0 and 1
        op = PRIMITIVES[int(ops[0, edge])]
        if op != "none":
            assert (op, edge) in node2


def test_bnas_has_no_parent_and_scores_by_child_accuracy(monkeypatch):
    strategy = _strategy("bnas", rounds=1, max_samples=1)
    assert strategy.parent is None and strategy.beta_p == 0.0
    (ops,) = _run_fake(strategy, monkeypatch)
    m = int(ops[0, 0])  # the op of normal edge 0 in the one sample: z = A_C = 0.05 m
    assert float(strategy.table.z[0, 0, 0, 0, m]) == pytest.approx(0.05 * m)


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="unknown op"):
        _strategy(ops=["sep_conv_3x3", "conv_7x7"])
    with pytest.raises(ConfigError, match="at least 2"):
        _strategy(ops=["sep_conv_3x3"])
    with pytest.raises(ConfigError, match="rounds"):
        _strategy(rounds=0)
    with pytest.raises(ConfigError, match="search.options"):  # BNAS fixes beta_P = 0
        resolve_method_options(tiny_run_config("bnas", beta_p=1.0))


@pytest.mark.slow
def test_full_search_writes_indicators_pruning_and_resumes_mid_round(tmp_path, monkeypatch):
    cfg = tiny_run_config("cp-nas", rounds=1, ops=list(SMALL_OPS), **TINY)
    full = api.search(cfg, tmp_path / "full", progress=False)
    assert full.epochs == 5  # T (3 + 2) samples, then finished
    used = {op for op, _ in full.genotype.normal + full.genotype.reduce}
    assert used <= set(SMALL_OPS)
    pruning = json.loads((tmp_path / "full" / "pruning.json").read_text())
    assert pruning["finished"] and [s["ops_before"] for s in pruning["order"]] == [3, 2]
    assert all(len(ops) == 1 for kind in ("normal", "reduce") for ops in pruning["remaining"][kind])
    indicators = json.loads((tmp_path / "full" / "indicators.json").read_text())
    assert [s["ops_per_edge"] for s in indicators["stages"]] == [3, 2]
    first = indicators["stages"][0]["rounds"][0]["normal"]
    assert all((v is None) == (PRIMITIVES[m] not in SMALL_OPS) for row in first for m, v in enumerate(row))
    assert (tmp_path / "full" / "indicators.png").is_file()
    records = read_metrics(tmp_path / "full" / "metrics.jsonl")
    assert [r["stage"] for r in records] == [0, 0, 0, 1, 1]
    assert "removed_ops" in records[2] and "round_indicators" in records[4]
    assert all(r["z_weight_child"] == 0.5 for r in records)  # the default beta_P = 0.5 uses the Child
    assert [("z_dep" in r) for r in records] == [False, False, True, False, True]
    assert {"spearman_child", "spearman_parent", "pruned_differs_parent"} <= set(records[2]["z_dep"])
    assert indicators["z_weight_child"] == 0.5 and indicators["stages"][0]["z_dep"] == records[2]["z_dep"]
    assert indicators["stages"][0]["child_acc_mean"]["normal"][0][PRIMITIVES.index("skip_connect")] is not None

    # Interrupt inside the last round (after a pruning step), then resume: identical end state.
    from tests.strategies.test_strategies import _interrupt_after

    with monkeypatch.context() as m:
        _interrupt_after(m, 4)
        with pytest.raises(KeyboardInterrupt):
            api.search(cfg, tmp_path / "cut", progress=False)
    resumed = api.search(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed.genotype == full.genotype
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["strategy"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["strategy"]
    for key in ("alive", "z", "pruned_at", "acc_parent", "acc_child"):
        assert torch.equal(a[key].nan_to_num(-9.0), b[key].nan_to_num(-9.0)), key
    for key in ("parent", "child"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name}"
    assert (tmp_path / "cut" / "pruning.json").read_text() == (tmp_path / "full" / "pruning.json").read_text()
