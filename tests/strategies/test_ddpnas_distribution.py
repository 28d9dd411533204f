"""DDPNAS's distribution: sampling rounds, pruning cycles, schedule length and the update arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from binas.space.primitives import PARAMETRIC, PRIMITIVES
from binas.strategies.ddpnas_distribution import (
    SCORE_DECAY,
    UPDATE_RULES,
    PruningDistribution,
    expectation,
    group_labels,
    mdenas_step,
    schedule,
    schedule_length,
)
from binas.strategies.ddpnas_spaces import WEIGHTLESS

#: V3's groups of the 8 DARTS ops (0: none, pools, skip; 1: the four convs).
DARTS_GROUPS = group_labels(PRIMITIVES, WEIGHTLESS)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _run(dist: PruningDistribution, acc_of, seed: int = 0):
    """Drive `dist` to the end; return (epochs, [(alive before, sampled ops per edge) per round], prunes)."""
    g, epochs, rounds, prunes = _gen(seed), 0, [], []
    current = None
    while not dist.finished():
        if current is None:
            current = (dist.alive.copy(), [[] for _ in range(dist.num_edges)])
        sample = dist.sample(g)
        for e, op in enumerate(sample.tolist()):
            current[1][e].append(op)
        dist.record(sample, acc_of(sample))
        pruned = dist.step()
        epochs += 1
        if not dist.todo.any() or dist.todo.sum() == dist.alive.sum():  # a round just ended and was refilled
            rounds.append(current)
            current = None
        if pruned is not None:
            prunes.append(pruned)
    return epochs, rounds, prunes


@pytest.mark.parametrize("update", ["momentum", "momentum_to_one", "score_decay", "mdenas"])
def test_rounds_sample_every_alive_op_once_and_cycles_prune_one_op_per_edge(update):
    dist = PruningDistribution(5, 4, rounds_per_prune=2, update=update)
    rng = np.random.default_rng(0)
    epochs, rounds, prunes = _run(dist, lambda s: float(rng.uniform()))
    for alive, sampled in rounds:
        for e in range(5):
            assert sorted(sampled[e]) == np.flatnonzero(alive[e]).tolist()  # each alive op exactly once
    assert len(prunes) == 3  # K - 1 cycles
    alive = np.ones((5, 4), dtype=bool)
    for pruned in prunes:
        for e, op in enumerate(pruned):
            assert alive[e, op]
            alive[e, op] = False
        assert (alive.sum(axis=1) == alive.sum(axis=1)[0]).all()
    assert (dist.alive.sum(axis=1) == 1).all() and dist.finished()
    assert epochs == schedule_length(4, 2) == 2 * (4 + 3 + 2)
    assert np.allclose(dist.theta.sum(axis=1), 1.0)


def test_schedule_lengths_match_the_spec():
    assert schedule_length(8, 3) == 105  # DARTS (spec §1.5)
    assert schedule_length(7, 3) == 81  # MobileNet
    assert schedule_length(5, 3) == 42  # NAS-Bench-201
    assert schedule(4, 1, warmup_rounds=2) == [4, 4, 4, 3, 2]
    assert schedule_length(8, 3, final_ops=2) == 99  # original V3 on DARTS: stop at 2 ops per edge
    assert schedule(4, 1, final_ops=2) == [4, 3]


def test_warmup_rounds_train_without_recording():
    dist = PruningDistribution(2, 3, rounds_per_prune=1, warmup_rounds=1)
    epochs, _, _ = _run(dist, lambda s: 0.5)
    assert epochs == schedule_length(3, 1, warmup_rounds=1) == 3 + 3 + 2


def test_expectation_is_the_mean_softmax_over_alive_ops():
    t1 = np.array([[0.50, 0.40, 0.00]])
    t2 = np.array([[0.30, 0.40, 0.00]])
    alive = np.array([[True, True, False]])
    got = expectation([t1, t2], alive, scale=10.0)
    e1 = np.exp([5.0, 4.0]) / np.exp([5.0, 4.0]).sum()
    e2 = np.exp([3.0, 4.0]) / np.exp([3.0, 4.0]).sum()
    assert np.allclose(got, [[*(e1 + e2) / 2, 0.0]])


def _one_cycle(update: str, accs: list[float]) -> PruningDistribution:
    """E = 1 edge, K = 3 ops, P = 1: sample each op once with the given accuracies, then update."""
    dist = PruningDistribution(1, 3, rounds_per_prune=1, update=update, gamma=0.5, score_scale=10.0, mdenas_lr=0.1)
    for op in range(3):
        dist.todo[:] = False
        dist.todo[0, op] = True  # force the order 0, 1, 2
        sample = dist.sample(_gen())
        dist.record(sample, accs[op])
        dist.todo[0, op + 1 :] = True
        if op < 2:
            assert dist.step() is None
    dist.todo[:] = False
    assert dist.step() == [int(np.argmin(accs))]
    return dist


def test_momentum_update_arithmetic():
    accs = [0.3, 0.5, 0.1]
    dist = _one_cycle("momentum", accs)
    e = np.exp(np.array(accs) * 10.0)
    e /= e.sum()
    v = 0.5 * e  # gamma v0 + (1 - gamma) E with v0 = 0
    theta = np.full(3, 1 / 3) + v
    assert np.allclose(dist.velocity[0], v)
    assert np.allclose(dist.theta[0], theta / theta.sum())
    assert dist.alive[0].tolist() == [True, True, False]


def test_score_decay_update_arithmetic():
    accs = [0.3, 0.5, 0.1]
    dist = _one_cycle("score_decay", accs)
    e = np.exp(np.array(accs) * 10.0)
    e /= e.sum()
    theta = e + SCORE_DECAY * np.full(3, 1 / 3)
    assert np.allclose(dist.theta[0], theta / theta.sum())


def test_mdenas_update_arithmetic():
    theta = np.array([[0.5, 0.3, 0.05, 0.15]])
    counts = np.array([[2.0, 2.0, 2.0, 1.0]])
    perf = np.array([[0.2, 0.6, 0.4, 0.9]])
    alive = np.array([[True, True, True, True]])
    mdenas_step(theta, counts, perf, alive, lr=0.1)
    # Pairs in order, theta after each: (0,1) n0 >= n1, p0 < p1: 0.1 from 0 to 1 -> [.4 .4 .05 .15];
    # (0,2) the same -> [.3 .4 .15 .15]; (0,3) n0 >= n3, p0 < p3 -> [.2 .4 .15 .25]; (1,2) n1 <= n2,
    # p1 > p2: 0.1 from 2 to 1 -> [.2 .5 .05 .25]; (1,3) n1 >= n3, p1 < p3 -> [.2 .4 .05 .35];
    # (2,3) theta_2 = 0.05 <= lr: all of it to 3 -> [.2 .4 0 .4].
    assert np.allclose(theta, [[0.2, 0.4, 0.0, 0.4]])
    assert np.isclose(theta.sum(), 1.0)


def test_mdenas_ignores_pruned_ops():
    theta = np.array([[0.5, 0.5]])
    before = theta.copy()
    mdenas_step(theta, np.ones((1, 2)), np.array([[0.1, 0.9]]), np.array([[True, False]]), lr=0.1)
    assert np.array_equal(theta, before)


@pytest.mark.parametrize("spread", [1.0, 0.1], ids=["saturated", "close"])
@pytest.mark.parametrize("update", ["momentum", "score_decay", "mdenas"])
def test_best_op_is_never_pruned_without_noise(update, spread):
    """Accuracy decided by edge 0's op alone (the other edges add < 1e-3): edge 0's best op survives
    every cycle, and every cycle prunes its worst alive op (merits far apart saturate the softmax, so
    this also checks the tie-break by cycle accuracy)."""
    merit = 0.4 + spread * np.array([0.3, 0.9, 0.5, 0.1, 0.7, 0.2, 0.6, 0.4]) / 2
    dist = PruningDistribution(3, 8, rounds_per_prune=2, update=update, mdenas_lr=1e-3)
    _, _, prunes = _run(dist, lambda s: float(merit[s[0]] + 1e-4 * s[1:].sum()))
    alive = list(range(8))
    for pruned in prunes:
        assert pruned[0] != int(np.argmax(merit))
        assert pruned[0] == min(alive, key=lambda k: merit[k])
        alive.remove(pruned[0])
    assert dist.best()[0] == int(np.argmax(merit)) and dist.alive[0].sum() == 1


def test_state_dict_round_trip_continues_identically():
    def drive(dist, start, stop):
        out = []
        for epoch in range(start, stop):
            s = dist.sample(_gen(epoch))
            dist.record(s, 0.1 * (epoch % 7))
            dist.step()
            out.append(s.tolist())
        return out

    full = PruningDistribution(3, 4, rounds_per_prune=1)
    expected = drive(full, 0, 8)
    part = PruningDistribution(3, 4, rounds_per_prune=1)
    drive(part, 0, 5)
    resumed = PruningDistribution(3, 4, rounds_per_prune=1)
    resumed.load_state_dict(part.state_dict())
    assert drive(resumed, 5, 8) == expected[5:]
    assert np.array_equal(resumed.theta, full.theta) and np.array_equal(resumed.alive, full.alive)


def test_unknown_update_rule_is_rejected():
    with pytest.raises(ValueError, match="unknown update rule"):
        PruningDistribution(1, 2, update="adam")
    with pytest.raises(ValueError, match="groups"):
        PruningDistribution(1, 3, groups=(0, 1))


def test_darts_groups_put_none_with_the_weightless_ops():
    assert DARTS_GROUPS == (0, 0, 0, 0, 1, 1, 1, 1)
    assert [op for op, g in zip(PRIMITIVES, DARTS_GROUPS) if g == 1] == list(PARAMETRIC)


#: Merit of each DARTS op: the four convs are the four worst ops, so a rule without the cap prunes all
#: of them before any weightless op.
CONVS_WORST = np.array([0.80, 0.70, 0.75, 0.85, 0.30, 0.20, 0.25, 0.35])


def _edge0_merit(sample):
    """Accuracy decided by edge 0's op (the other edges add < 1e-3)."""
    return float(CONVS_WORST[sample[0]] + 1e-4 * sample[1:].sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_original_v3_caps_each_group_at_three_and_stops_with_one_op_of_each(seed):
    """XNAS@92720aa V3: never a 4th parametric or 4th non-parametric op pruned on any edge, and the
    search stops after 6 cycles with 2 ops per edge, one parametric and one non-parametric."""
    rng = np.random.default_rng(seed)
    dist = PruningDistribution(4, 8, rounds_per_prune=2, update="momentum", groups=DARTS_GROUPS)
    epochs, _, prunes = _run(dist, lambda s: float(rng.uniform()), seed=seed)
    groups = np.array(DARTS_GROUPS)
    counts = np.zeros((4, 2), dtype=int)
    for pruned in prunes:
        for e, op in enumerate(pruned):
            counts[e, groups[op]] += 1
            assert counts[e].max() <= 3, f"edge {e}: a 4th op of group {groups[op]} was pruned"
    assert len(prunes) == 6 and (counts == 3).all()
    assert dist.finished() and dist.final_ops == 2
    assert (dist.alive.sum(axis=1) == 2).all()
    assert all(sorted(groups[dist.alive[e]].tolist()) == [0, 1] for e in range(4))
    assert epochs == schedule_length(8, 2, final_ops=2) == 2 * 33


def test_v3_cap_keeps_the_last_conv_that_the_uncapped_rule_prunes():
    """With the convs the four worst ops, both momentum rules prune the three worst convs first; the
    original V3 then keeps the last conv and prunes weightless ops, `momentum_to_one` prunes it."""
    capped = PruningDistribution(2, 8, rounds_per_prune=1, update="momentum", groups=DARTS_GROUPS)
    _, _, v3 = _run(capped, _edge0_merit)
    to_one = PruningDistribution(2, 8, rounds_per_prune=1, update="momentum_to_one", groups=DARTS_GROUPS)
    _, _, hybrid = _run(to_one, _edge0_merit)
    v3_order = [p[0] for p in v3]
    assert v3_order == [5, 6, 4, 1, 2, 0]  # 3 convs by merit, then the weightless ops by merit
    assert [p[0] for p in hybrid] == [5, 6, 4, 7, 1, 2, 0]  # the 4th conv (dil_conv_5x5) goes 4th
    assert capped.alive[0].tolist() == [False, False, False, True, False, False, False, True]
    assert to_one.alive[0].tolist() == [False, False, False, True, False, False, False, False]
    assert capped.best()[0] == PRIMITIVES.index("skip_connect")  # the higher-theta of the two left


@pytest.mark.parametrize("update", [r for r in UPDATE_RULES if r != "momentum"])
def test_other_rules_ignore_the_groups_and_prune_to_one_op(update):
    dist = PruningDistribution(3, 8, rounds_per_prune=1, update=update, groups=DARTS_GROUPS, mdenas_lr=1e-3)
    epochs, _, prunes = _run(dist, _edge0_merit)
    assert len(prunes) == 7 and dist.final_ops == 1 and (dist.alive.sum(axis=1) == 1).all()
    assert epochs == schedule_length(8, 1) == 35


def test_momentum_without_groups_prunes_to_one_op():
    """The mobile space has no V3 groups: `momentum` then behaves exactly like `momentum_to_one`."""
    runs = {}
    for update in ("momentum", "momentum_to_one"):
        dist = PruningDistribution(3, 7, rounds_per_prune=1, update=update)
        runs[update] = (_run(dist, _edge0_merit)[2], dist.theta.copy())
        assert dist.final_ops == 1 and (dist.alive.sum(axis=1) == 1).all()
    assert runs["momentum"][0] == runs["momentum_to_one"][0]
    assert np.array_equal(runs["momentum"][1], runs["momentum_to_one"][1])
