"""The multiple-choice knapsack: optimal on small cases (checked by brute force), within budget."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from binas.generation.budgets import GenerationError
from binas.generation.knapsack import integer_values, solve_knapsack


def brute_force(values: np.ndarray, costs: np.ndarray, budget: float) -> int | None:
    best = None
    for choice in itertools.product(*(range(values.shape[1]) for _ in range(values.shape[0]))):
        rows = np.arange(len(choice))
        if costs[rows, choice].sum() <= budget:
            value = int(values[rows, choice].sum())
            best = value if best is None else max(best, value)
    return best


@pytest.mark.parametrize("seed", range(25))
def test_optimal_and_within_budget_on_random_small_cases(seed):
    rng = np.random.default_rng(seed)
    n, k = rng.integers(1, 5), rng.integers(2, 5)
    theta = rng.dirichlet(np.ones(k), size=n)
    costs = rng.integers(0, 20, size=(n, k)).astype(float)
    budget = float(rng.integers(0, 20 * n))
    optimum = brute_force(integer_values(theta), costs, budget)
    if optimum is None:
        with pytest.raises(GenerationError, match="no network fits"):
            solve_knapsack(theta, costs, budget)
        return
    result = solve_knapsack(theta, costs, budget)
    rows = np.arange(n)
    assert result.value == optimum == int(integer_values(theta)[rows, list(result.choice)].sum())
    assert result.cost == costs[rows, list(result.choice)].sum() <= budget


def test_large_budget_takes_the_argmax_and_ties_take_the_cheapest():
    theta = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]])
    costs = np.array([[1.0, 9.0, 2.0], [4.0, 3.0, 0.0]])
    assert solve_knapsack(theta, costs, 1e9).choice == (1, 1)  # block 1: equal value, cheaper op
    assert solve_knapsack(theta, costs, 5.0).choice == (2, 1)  # 0.2 + 0.5 at cost 5


def test_float_costs_such_as_latency():
    theta = np.array([[0.6, 0.4], [0.3, 0.7]])
    costs = np.array([[1.25, 0.5], [0.75, 2.0]])
    result = solve_knapsack(theta, costs, 2.0)
    assert result.choice == (0, 0) and result.cost == pytest.approx(2.0)


def test_allowed_mask_excludes_ops():
    theta = np.array([[0.9, 0.1]])
    assert solve_knapsack(theta, np.ones((1, 2)), 10.0, allowed=np.array([[False, True]])).choice == (1,)
