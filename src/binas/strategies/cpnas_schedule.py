"""CP-NAS bookkeeping as pure functions: the sampling schedule, the indicator, pruning, the final cell.

Algorithm 9 (spec §4.2): while K > 1, repeat T rounds of K samplings *without replacement* (every
remaining op of every edge is sampled exactly once per round), give each sampled op the indicator z of
its architecture (Eq. 4.15), average z over the T rounds and softmax it per edge (Eq. 4.16), then drop
the worst op of every edge (K <- K - 1). Tensors here are CPU tensors indexed (cell kind, edge, op).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from binas.errors import ConfigError

IndicatorSign = Literal["as_printed", "penalize_gap"]

#: `pruned_at` codes of ops that no stage removed: still in the search, or never a candidate.
ALIVE, EXCLUDED = -1, -2
#: Offset added to the final weight of an edge whose surviving op is not `none`, so that such edges
#: always rank above the fallback edges of a node (A9 fallback, see `final_weights`); e(.) lies in [0, 1].
SURVIVOR_TIER = 1.0


@dataclass(frozen=True)
class Position:
    """Where sample number `index` (0-based, one engine epoch each) lies in the schedule.

    Attributes:
        stage: pruning stage; K = num_ops - stage ops remain on every edge during it.
        k: ops per edge in this stage (= samples per round).
        round: round t within the stage (0 .. T-1).
        sample: sample e within the round (0 .. K-1).
    """

    index: int
    stage: int
    k: int
    round: int
    sample: int

    @property
    def ends_round(self) -> bool:
        return self.sample == self.k - 1

    def ends_stage(self, rounds: int) -> bool:
        return self.ends_round and self.round == rounds - 1


def num_stages(num_ops: int) -> int:
    """Pruning stages from `num_ops` ops per edge down to one (K = num_ops, ..., 2)."""
    return num_ops - 1


def schedule_length(num_ops: int, rounds: int) -> int:
    """Sampled architectures in the whole search: T * (M + (M-1) + ... + 2); 35 T for M = 8 (spec §4.2)."""
    return rounds * sum(range(2, num_ops + 1))


def position(index: int, num_ops: int, rounds: int) -> Position:
    """The (stage, round, sample) of sample `index`; raises `ValueError` past the end of the schedule."""
    if index < 0:
        raise ValueError(f"sample index must be >= 0, got {index}")
    rest = index
    for stage in range(num_stages(num_ops)):
        k = num_ops - stage
        if rest < rounds * k:
            return Position(index, stage, k, rest // k, rest % k)
        rest -= rounds * k
    raise ValueError(f"sample {index} is past the end of the schedule ({schedule_length(num_ops, rounds)} samples)")


def sampling_order(alive: Tensor, generator: torch.Generator) -> Tensor:
    """One round's sampling without replacement: (..., E, K) op indices, a random permutation of the
    K alive ops of every edge, so column s is the architecture of sample s (Algorithm 9)."""
    flat = alive.reshape(-1, alive.shape[-1])
    counts = flat.sum(dim=1)
    if not bool((counts == counts[0]).all()):
        raise ValueError("every edge must have the same number of remaining ops")
    k = int(counts[0])
    rows = []
    for row in flat:
        ops = row.nonzero().flatten()
        rows.append(ops[torch.randperm(k, generator=generator)])
    return torch.stack(rows).reshape(*alive.shape[:-1], k)


def indicator(acc_parent: float, acc_child: float, beta_p: float, sign: IndicatorSign = "as_printed") -> float:
    """CP-NAS Eq. 4.15: z = beta_P (A_P - A_C) + A_C as printed, or A_C - beta_P (A_P - A_C) (spec A10).

    `as_printed` rewards a parent-child gap when beta_P > 0; `penalize_gap` penalises it, which fits the
    ablation remark that a larger beta_P selects fewer conv ops. beta_P = 0 is BNAS's child accuracy.
    """
    gap = acc_parent - acc_child
    if sign == "as_printed":
        return beta_p * gap + acc_child
    if sign == "penalize_gap":
        return acc_child - beta_p * gap
    raise ConfigError(f"unknown indicator sign '{sign}'; choose as_printed or penalize_gap")


def indicator_weights(beta_p: float, sign: IndicatorSign = "as_printed") -> tuple[float, float]:
    """(w_P, w_C) with z = w_P A_P + w_C A_C (Eq. 4.15 is linear): (beta_P, 1 - beta_P) as printed,
    (-beta_P, 1 + beta_P) penalising the gap. w_C = 0 means the indicator ignores the 1-bit Child."""
    w_parent = indicator(1.0, 0.0, beta_p, sign)
    return w_parent, indicator(0.0, 1.0, beta_p, sign)


def mean_indicator(z_rounds: Tensor) -> Tensor:
    """z-bar of Eq. 4.16: the mean over rounds (dim 0) of the z each op received; NaN for ops never sampled."""
    sampled = ~torch.isnan(z_rounds)
    total = torch.where(sampled, z_rounds, torch.zeros_like(z_rounds)).sum(dim=0)
    count = sampled.sum(dim=0)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


def normalized_indicator(z_bar: Tensor, alive: Tensor) -> Tensor:
    """CP-NAS Eq. 4.16: e(o_k) = softmax over the edge's remaining ops of z-bar; 0 for removed ops.

    Remaining ops without a value yet (NaN) count as z-bar = 0 before the softmax.
    """
    logits = torch.where(alive, torch.nan_to_num(z_bar, nan=0.0), torch.full_like(z_bar, float("-inf")))
    return torch.softmax(logits, dim=-1)


def prune_worst(e: Tensor, alive: Tensor) -> tuple[Tensor, Tensor]:
    """Drop from every edge the remaining op with the smallest e(.) (Fig. 4.4 "Minimum"; ties: lowest
    op index). Returns the new alive mask and the (..., E) indices of the dropped ops."""
    if bool((alive.sum(dim=-1) < 2).any()):
        raise ValueError("cannot prune an edge with fewer than 2 remaining ops")
    scores = torch.where(alive, e, torch.full_like(e, float("inf")))
    worst = scores.argmin(dim=-1)
    new_alive = alive.clone()
    new_alive.scatter_(-1, worst.unsqueeze(-1), False)
    return new_alive, worst


def final_weights(last_e: Tensor, alive: Tensor, none_index: int | None) -> Tensor:
    """(E, M) weights whose DARTS derivation is the A9 rule for a cell with one op left per edge.

    A9 (spec §8): per intermediate node keep the two input edges whose surviving non-`none` op has the
    highest e(.) of the last stage (K = 2). [Inf] Fallback so that every node still gets two inputs:
    an edge whose survivor is `none` offers its last removed op (the runner-up of the last stage) with
    that op's e(.); such edges rank below every edge with a real survivor (`SURVIVOR_TIER`).
    """
    if not bool((alive.sum(dim=-1) == 1).all()):
        raise ValueError("final_weights needs exactly one remaining op per edge")
    weights = torch.zeros_like(last_e)
    survivor = alive.float().argmax(dim=-1)
    for e, m in enumerate(survivor.tolist()):
        if m != none_index:
            weights[e, m] = SURVIVOR_TIER + last_e[e, m]
            continue
        others = last_e[e].clone()
        others[m] = float("-inf")
        if none_index is not None:
            others[none_index] = float("-inf")
        runner_up = int(others.argmax())
        weights[e, runner_up] = last_e[e, runner_up]
    return weights


RankMethod = Literal["spearman", "kendall"]


def _average_ranks(x: Tensor) -> Tensor:
    """1-based ranks of a 1-D tensor, ties sharing their mean rank."""
    below = (x[None, :] < x[:, None]).sum(dim=1)
    equal = (x[None, :] == x[:, None]).sum(dim=1)
    return below.double() + (equal.double() + 1) / 2


def rank_correlation(x: Tensor, y: Tensor, method: RankMethod = "spearman") -> float:
    """Spearman's rho (Pearson correlation of average ranks) or Kendall's tau-b of two 1-D samples;
    NaN when fewer than 2 values or either sample is constant (the correlation is undefined)."""
    x, y = x.double().flatten(), y.double().flatten()
    if method == "spearman":
        rx, ry = _average_ranks(x), _average_ranks(y)
        rx, ry = rx - rx.mean(), ry - ry.mean()
        den = float((rx.square().sum() * ry.square().sum()).sqrt())
        return float((rx * ry).sum()) / den if den > 0 else float("nan")
    if method == "kendall":
        sx = torch.sign(x[:, None] - x[None, :])
        sy = torch.sign(y[:, None] - y[None, :])
        den = float((sx.abs().sum() * sy.abs().sum()).sqrt())
        return float((sx * sy).sum()) / den if den > 0 else float("nan")
    raise ValueError(f"unknown rank correlation '{method}'; choose spearman or kendall")


def edge_rank_correlation(a: Tensor, b: Tensor, alive: Tensor, method: RankMethod = "spearman") -> float:
    """Mean over edges (all leading dims) of the rank correlation of `a` and `b` across the edge's
    alive ops: how similarly the two per-op tables rank the ops that pruning compares. Edges where it is
    undefined (a constant table, < 2 ops) are left out; NaN if no edge has one."""
    values = []
    for va, vb, live in zip(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]), alive.reshape(-1, alive.shape[-1])):
        keep = live & ~va.isnan() & ~vb.isnan()
        r = rank_correlation(va[keep], vb[keep], method)
        if not math.isnan(r):
            values.append(r)
    return sum(values) / len(values) if values else float("nan")


def pruned_by(score_bar: Tensor, alive: Tensor) -> Tensor:
    """The (..., E) ops `prune_worst` removes when e(.) is the softmax of `score_bar` (e.g. the mean A_P
    alone, to see whether the indicator's choice differs from it)."""
    return prune_worst(normalized_indicator(score_bar, alive), alive)[1]
