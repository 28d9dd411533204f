"""CP-NAS bookkeeping on hand-made tables: schedule, sampling, indicator (Eqs. 4.15-4.16), pruning, A9."""

from __future__ import annotations

import math

import pytest
import torch

from binas.errors import ConfigError
from binas.strategies import cpnas_schedule as sched


def test_schedule_length_is_35_t_for_eight_ops():
    assert sched.schedule_length(8, 1) == 35
    assert sched.schedule_length(8, 3) == 105
    assert sched.schedule_length(3, 2) == 10


@pytest.mark.parametrize("num_ops, rounds", [(8, 1), (4, 3), (2, 2)])
def test_positions_enumerate_stages_rounds_and_samples_in_order(num_ops, rounds):
    expected = [
        (stage, num_ops - stage, t, e)
        for stage in range(num_ops - 1)
        for t in range(rounds)
        for e in range(num_ops - stage)
    ]
    got = [sched.position(i, num_ops, rounds) for i in range(sched.schedule_length(num_ops, rounds))]
    assert [(p.stage, p.k, p.round, p.sample) for p in got] == expected
    assert sum(p.ends_stage(rounds) for p in got) == num_ops - 1
    with pytest.raises(ValueError):
        sched.position(len(expected), num_ops, rounds)


def test_sampling_order_is_a_permutation_of_the_alive_ops_of_every_edge():
    alive = torch.ones(2, 14, 8, dtype=torch.bool)
    alive[0, :, 3] = False  # one op already removed from every normal edge ...
    alive[1, :, 0] = False  # ... and another from every reduction edge
    order = sched.sampling_order(alive, torch.Generator().manual_seed(0))
    assert order.shape == (2, 14, 7)
    for kind in range(2):
        for edge in range(14):
            assert sorted(order[kind, edge].tolist()) == alive[kind, edge].nonzero().flatten().tolist()


def test_sampling_orders_differ_across_generators():
    alive = torch.ones(2, 14, 8, dtype=torch.bool)
    a = sched.sampling_order(alive, torch.Generator().manual_seed(0))
    b = sched.sampling_order(alive, torch.Generator().manual_seed(1))
    assert not torch.equal(a, b)
    assert torch.equal(a, sched.sampling_order(alive, torch.Generator().manual_seed(0)))


def test_sampling_order_needs_equal_counts():
    alive = torch.ones(2, 14, 8, dtype=torch.bool)
    alive[0, 0, 0] = False
    with pytest.raises(ValueError):
        sched.sampling_order(alive, torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "beta_p, sign, expected",
    [
        (1.0, "as_printed", 0.9),  # beta (A_P - A_C) + A_C = 0.3 + 0.6
        (0.5, "as_printed", 0.75),
        (0.0, "as_printed", 0.6),  # BNAS: the child's accuracy alone
        (1.0, "penalize_gap", 0.3),  # A_C - beta (A_P - A_C) = 0.6 - 0.3
        (0.5, "penalize_gap", 0.45),
        (0.0, "penalize_gap", 0.6),
    ],
)
def test_indicator_arithmetic(beta_p, sign, expected):
    assert sched.indicator(0.9, 0.6, beta_p, sign) == pytest.approx(expected)


def test_unknown_indicator_sign_is_a_config_error():
    with pytest.raises(ConfigError):
        sched.indicator(0.9, 0.6, 1.0, "reversed")  # type: ignore[arg-type]


def test_mean_over_rounds_and_softmax_per_edge():
    nan = float("nan")
    # Two rounds, one edge, three ops; op 2 was removed earlier (never sampled in this stage).
    z_rounds = torch.tensor([[[0.2, 0.6, nan]], [[0.4, 0.8, nan]]], dtype=torch.float64)
    z_bar = sched.mean_indicator(z_rounds)
    assert z_bar[0, :2].tolist() == pytest.approx([0.3, 0.7])
    assert math.isnan(z_bar[0, 2])
    alive = torch.tensor([[True, True, False]])
    e = sched.normalized_indicator(z_bar, alive)
    expected = [math.exp(0.3) / (math.exp(0.3) + math.exp(0.7)), math.exp(0.7) / (math.exp(0.3) + math.exp(0.7)), 0]
    assert e[0].tolist() == pytest.approx(expected)


def test_prune_worst_removes_exactly_one_op_per_edge():
    e = torch.tensor([[0.1, 0.5, 0.4, 0.0], [0.3, 0.3, 0.4, 0.0], [0.6, 0.0, 0.4, 0.0]], dtype=torch.float64)
    alive = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0], [1, 0, 1, 0]], dtype=torch.bool)
    new_alive, worst = sched.prune_worst(e, alive)
    assert worst.tolist() == [0, 0, 2]  # smallest e among alive ops; ties go to the lower op index
    assert (alive.sum(-1) - new_alive.sum(-1)).tolist() == [1, 1, 1]
    assert not new_alive[torch.arange(3), worst].any()
    with pytest.raises(ValueError):
        sched.prune_worst(e, new_alive & torch.tensor([True, False, False, False]))


def test_final_weights_rank_real_survivors_above_the_none_fallback():
    # Edge 0 keeps sep (e 0.6), edge 1 keeps `none` (runner-up pool e 0.45), edge 2 keeps skip (e 0.5).
    prims = ("none", "pool", "skip", "sep")
    last_e = torch.tensor([[0.0, 0.4, 0.0, 0.6], [0.55, 0.45, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]], dtype=torch.float64)
    alive = torch.tensor([[0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 1, 0]], dtype=torch.bool)
    w = sched.final_weights(last_e, alive, prims.index("none"))
    assert w[0].tolist() == pytest.approx([0, 0, 0, sched.SURVIVOR_TIER + 0.6])
    assert w[1].tolist() == pytest.approx([0, 0.45, 0, 0])
    assert w[2].tolist() == pytest.approx([0, 0, sched.SURVIVOR_TIER + 0.5, 0])
    assert w[2].max() > w[1].max()  # a real survivor always beats a fallback edge
    with pytest.raises(ValueError):
        sched.final_weights(last_e, torch.ones(3, 4, dtype=torch.bool), 0)


@pytest.mark.parametrize(
    "beta_p, sign, expected",
    [
        (0.5, "as_printed", (0.5, 0.5)),
        (1.0, "as_printed", (1.0, 0.0)),  # the Child has no weight: z = A_P
        (0.0, "as_printed", (0.0, 1.0)),
        (0.5, "penalize_gap", (-0.5, 1.5)),
    ],
)
def test_indicator_weights_reproduce_the_indicator(beta_p, sign, expected):
    w_parent, w_child = sched.indicator_weights(beta_p, sign)
    assert (w_parent, w_child) == pytest.approx(expected)
    assert sched.indicator(0.9, 0.6, beta_p, sign) == pytest.approx(w_parent * 0.9 + w_child * 0.6)


def test_rank_correlations_on_hand_computed_samples():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert sched.rank_correlation(x, 10 * x, "spearman") == pytest.approx(1.0)
    assert sched.rank_correlation(x, -x.exp(), "kendall") == pytest.approx(-1.0)
    y = torch.tensor([1.0, 3.0, 2.0, 4.0])  # one swapped pair: 5 concordant, 1 discordant
    assert sched.rank_correlation(x, y, "kendall") == pytest.approx(4 / 6)
    assert sched.rank_correlation(x, y, "spearman") == pytest.approx(1 - 6 * 2 / (4 * 15))
    ties = torch.tensor([1.0, 1.0, 2.0, 3.0])  # tau-b: 5 concordant of 6 pairs, 1 tied in `ties`
    assert sched.rank_correlation(x, ties, "kendall") == pytest.approx(5 / math.sqrt(6 * 5))
    assert math.isnan(sched.rank_correlation(x, torch.ones(4), "spearman"))
    assert math.isnan(sched.rank_correlation(x[:1], x[:1], "kendall"))
    scipy_stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, 4, (9,), generator=g).double(), torch.randn(9, generator=g, dtype=torch.float64)
    assert sched.rank_correlation(a, b, "spearman") == pytest.approx(scipy_stats.spearmanr(a, b).statistic)
    assert sched.rank_correlation(a, b, "kendall") == pytest.approx(scipy_stats.kendalltau(a, b).statistic)


def test_edge_rank_correlation_averages_edges_over_alive_ops_and_pruned_by_follows_the_score():
    a = torch.tensor([[0.1, 0.2, 0.3, 9.0], [0.3, 0.2, 0.1, 0.0], [0.5, 0.5, 0.5, 0.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 2.0, 3.0, 0.0], [1.0, 2.0, 3.0, 0.0], [1.0, 2.0, 3.0, 0.0]], dtype=torch.float64)
    alive = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0]], dtype=torch.bool)
    # edge 0: +1 (op 3 is removed, its 9.0 is ignored), edge 1: -1, edge 2: undefined (constant a)
    assert sched.edge_rank_correlation(a, b, alive, "spearman") == pytest.approx(0.0)
    assert sched.edge_rank_correlation(a[:1], b[:1], alive[:1], "kendall") == pytest.approx(1.0)
    assert math.isnan(sched.edge_rank_correlation(a[2:], b[2:], alive[2:]))
    assert sched.pruned_by(a, alive).tolist() == [0, 2, 0]
    assert sched.pruned_by(b, alive).tolist() == [0, 0, 0]
