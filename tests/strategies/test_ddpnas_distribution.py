"""DDPNAS's distribution: sampling rounds, pruning cycles, schedule length and the update arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from binas.strategies.ddpnas_distribution import (
    SCORE_DECAY,
    PruningDistribution,
    expectation,
    mdenas_step,
    schedule,
    schedule_length,
)


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


@pytest.mark.parametrize("update", ["momentum", "score_decay", "mdenas"])
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
        dist.todo[0, op + 1:] = True
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
