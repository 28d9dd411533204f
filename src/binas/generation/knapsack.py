"""Multiple-choice knapsack by dynamic programming (spec ddpnas §2.1, XNAS@92720aa `get_path`).

Pick one op per block so that the summed cost (FLOPs, params or latency) stays within a budget and
the summed value `floor(resolution * theta)` is maximal ("keep two decimals": resolution 100).
`dp[i][j]` is the smallest cost of blocks 0..i with value sum exactly j; the answer is the largest j
with `dp[n-1][j] <= budget`, and the choices are read back from the stored per-state choice.

Two fixes over the reference: the last block's op is read from the stored choice of the optimal state
(the reference took the loop variable `k`, spec §2.1 caveat), and a block whose ops share a value
keeps the cheapest one (the reference kept the last one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from binas.generation.budgets import GenerationError

#: Integer value per unit of theta (the reference's `int(100 * theta)`: two decimals).
VALUE_RESOLUTION = 100


@dataclass(frozen=True)
class KnapsackResult:
    """The chosen op index per block, its summed integer value and its summed cost."""

    choice: tuple[int, ...]
    value: int
    cost: float


def integer_values(theta: np.ndarray, resolution: int = VALUE_RESOLUTION) -> np.ndarray:
    """`floor(resolution * theta)` as ints (theta >= 0)."""
    return np.floor(np.asarray(theta, dtype=np.float64) * resolution + 1e-9).astype(np.int64)


def solve_knapsack(
    theta: np.ndarray,
    costs: np.ndarray,
    budget: float,
    *,
    resolution: int = VALUE_RESOLUTION,
    allowed: np.ndarray | None = None,
) -> KnapsackResult:
    """Maximise the summed integer value of one op per block under `sum(cost) <= budget`.

    Args:
        theta: (n, K) non-negative scores (DDPNAS's theta).
        costs: (n, K) costs of each op on each block (0 for a skipped block).
        budget: the bound on the summed cost of the blocks (fixed parts already subtracted).
        resolution: integer value per unit of theta.
        allowed: optional (n, K) mask of usable ops.

    Raises:
        GenerationError: no choice of ops meets the budget.
    """
    values = integer_values(theta, resolution)
    costs = np.asarray(costs, dtype=np.float64)
    if values.shape != costs.shape or values.ndim != 2:
        raise ValueError(f"theta {values.shape} and costs {costs.shape} must be the same (blocks, ops) shape")
    if (values < 0).any():
        raise ValueError("theta must be non-negative")
    if allowed is not None:
        costs = np.where(allowed, costs, np.inf)
    n, k_ops = values.shape
    top = int(values.max(axis=1).sum())
    dp = np.zeros(top + 1)
    dp[1:] = np.inf  # before block 0: value 0 at cost 0
    choice = np.zeros((n, top + 1), dtype=np.int64)
    for i in range(n):
        new = np.full(top + 1, np.inf)
        for k in range(k_ops):
            v = int(values[i, k])
            shifted = np.full(top + 1, np.inf)
            shifted[v:] = dp[: top + 1 - v] + costs[i, k]
            better = shifted < new
            new[better] = shifted[better]
            choice[i, better] = k
        dp = new
    feasible = np.flatnonzero(dp <= budget)
    if feasible.size == 0:
        cheapest = float(np.nanmin(np.where(np.isfinite(costs), costs, np.nan), axis=1).sum())
        raise GenerationError(
            f"no network fits the budget: the cheapest choice costs {cheapest:.6g} "
            f"against {budget:.6g} left for the searchable blocks"
        )
    j = int(feasible.max())
    best_value, total = j, float(dp[j])
    path = [0] * n
    for i in range(n - 1, -1, -1):
        path[i] = int(choice[i, j])
        j -= int(values[i, path[i]])
    return KnapsackResult(tuple(path), best_value, total)
