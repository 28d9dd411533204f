"""DDPNAS's dynamic distribution: sampling without replacement, accuracy credit, update, pruning.

Pure bookkeeping on an (E x K) categorical theta (spec ddpnas §1.1-§1.5, after XNAS@92720aa
`Category_DDPNAS*.py`); no network in here, so every rule is unit-testable on hand-made numbers.

* Sampling (§1.2): each edge draws uniformly *without replacement* from its alive ops not yet drawn in
  the current round, so a round of k epochs trains and validates every alive op exactly once.
* Credit (§1.3): the validation top-1 accuracy (a fraction in [0, 1]) of an epoch's sample is written
  for every (edge, sampled op).
* Update (§1.4), after `rounds_per_prune` (P) rounds: E = mean over rounds of softmax(acc * scale)
  over the alive ops of each edge, then
  `momentum` and `momentum_to_one` (V3): v = gamma v + (1 - gamma) E; theta += v, or
  `score_decay` (V1): theta = E + 0.5 theta;
  then the prunable op with the lowest theta is pruned on every edge and theta is renormalised.
  Exact ties in theta are broken by the lower mean accuracy of the cycle, then by op index.
* Pruning and stop (§1.5). `momentum` is the original V3 (XNAS@92720aa `Category_DDPNAS_V3.py`): ops
  are split into groups (`groups`; on the DARTS space parametric vs non-parametric, `none` counting as
  non-parametric) and the last alive op of a group is never pruned, so with the 8 DARTS ops at most 3
  parametric and 3 non-parametric ops go and the search stops with 2 ops per edge, one of each. Every
  other rule prunes to one op per edge (V1's stop): `momentum_to_one` is V3's update with that stop and no
  cap (what XNAS HEAD does, with its cap commented out), `score_decay` is V1. Without `groups` every op
  is in one group, so `momentum` also prunes to one op.
* `mdenas` (§5, the predecessor's rule) instead moves `mdenas_lr` of probability mass after every
  epoch from an op to a rival that was sampled no more often and scored higher (pairwise, over the
  alive ops); pruning still removes the lowest-theta alive op every P rounds.

Deviations, on purpose: the softmax is taken over the alive ops only (pruned ops get E = 0). The
reference relies on e^0 being negligible next to e^(100 acc); at the low accuracies of a 1-bit or
digits supernet it is not, and pruned ops would keep collecting mass. And ties: an op scoring more than
about 0.4 below the best of its edge gets E ~ e^-40, which vanishes next to theta ~ 1/K in float64, so
several weak ops end a cycle with exactly equal theta; the reference (`nanargmin`) then prunes the lowest
index, i.e. by op order, not by merit. Here such ties go to the op with the lower cycle accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import torch

UpdateRule = Literal["momentum", "momentum_to_one", "score_decay", "mdenas"]
UPDATE_RULES: tuple[str, ...] = get_args(UpdateRule)
#: Rules that never prune the last alive op of a group and stop at one op per group (original V3).
GROUP_CAPPED_RULES: tuple[str, ...] = ("momentum",)
#: Rules with the V3 momentum update of theta.
MOMENTUM_RULES: tuple[str, ...] = ("momentum", "momentum_to_one")
#: Multiplier of accuracy fractions inside the softmax (XNAS@92720aa: `softmax(val_performance * 100)`).
ACCURACY_SCALE = 100.0
#: Momentum of the V3 update (spec ddpnas §1.4: the 2020 CLI default `--gamma 0.8`).
GAMMA = 0.8
#: Weight of the old theta in the V1 "score decay" update `theta = E + 0.5 theta` (Category_DDPNAS.py).
SCORE_DECAY = 0.5
#: MDENAS probability step (XNAS THETA_LR default 0.01, spec ddpnas §4.2).
MDENAS_LR = 0.01
#: Rounds per pruned op (spec ddpnas §1.4: PRUNING_STEP, default 3).
ROUNDS_PER_PRUNE = 3


def schedule(num_ops: int, rounds_per_prune: int, warmup_rounds: int = 0, final_ops: int = 1) -> list[int]:
    """Length (epochs) of every round: `warmup_rounds` rounds of K, then P rounds of k for
    k = K .. final_ops + 1 (the search stops with `final_ops` ops per edge: 1, or 2 for the original V3)."""
    rounds = [num_ops] * warmup_rounds
    for alive in range(num_ops, final_ops, -1):
        rounds += [alive] * rounds_per_prune
    return rounds


def schedule_length(num_ops: int, rounds_per_prune: int, warmup_rounds: int = 0, final_ops: int = 1) -> int:
    """Total search epochs: warm-up K per round plus P (K + (K-1) + ... + final_ops + 1) (spec ddpnas
    §1.5): P x 35 for the 8 DARTS ops pruned to one, P x 33 for the original V3 (stop at 2)."""
    return sum(schedule(num_ops, rounds_per_prune, warmup_rounds, final_ops))


def group_labels(op_names: list[str] | tuple[str, ...], weightless: set[str] | frozenset[str]) -> tuple[int, ...]:
    """V3's groups of DARTS ops: 0 for the ops in `weightless` (non-parametric: `none`, pools, skip),
    1 for the rest (parametric)."""
    return tuple(0 if op in weightless else 1 for op in op_names)


def expectation(tables: list[np.ndarray], alive: np.ndarray, scale: float = ACCURACY_SCALE) -> np.ndarray:
    """Mean over rounds of the per-edge softmax of `scale * accuracy` over the alive ops (0 for pruned)."""
    out = np.zeros(alive.shape)
    for table in tables:
        logits = np.where(alive, scale * table, -np.inf)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        out += weights / weights.sum(axis=1, keepdims=True)
    return out / max(len(tables), 1)


def mdenas_step(theta: np.ndarray, counts: np.ndarray, perf: np.ndarray, alive: np.ndarray, lr: float) -> None:
    """MDENAS pairwise update, in place (spec ddpnas §5; XNAS `MDENAS.py`): for ops i < j of an edge, if
    i was sampled at least as often as j and scored lower, move `lr` (or all of theta_i) from i to j;
    symmetrically from j to i. Only alive ops take part."""
    edges, ops = theta.shape
    for e in range(edges):
        live = [m for m in range(ops) if alive[e, m]]
        for a, i in enumerate(live):
            for j in live[a + 1 :]:
                if counts[e, i] >= counts[e, j] and perf[e, i] < perf[e, j]:
                    moved = lr if theta[e, i] > lr else theta[e, i]
                    theta[e, i] -= moved
                    theta[e, j] += moved
                if counts[e, i] <= counts[e, j] and perf[e, i] > perf[e, j]:
                    moved = lr if theta[e, j] > lr else theta[e, j]
                    theta[e, j] -= moved
                    theta[e, i] += moved


@dataclass
class PruningDistribution:
    """The state of a DDPNAS search over E edges with K candidate ops each.

    Attributes:
        num_edges, num_ops: E and K.
        rounds_per_prune: P, rounds of sampling per pruned op.
        update: `momentum` (original V3), `momentum_to_one`, `score_decay` or `mdenas` (module docstring).
        gamma, score_scale, mdenas_lr: parameters of the update rules.
        warmup_rounds: rounds at the start whose accuracies are not recorded (weights warm up only).
        groups: a group label per op for the `momentum` cap (e.g. `group_labels`); None: one group.
    """

    num_edges: int
    num_ops: int
    rounds_per_prune: int = ROUNDS_PER_PRUNE
    update: str = "momentum"
    gamma: float = GAMMA
    score_scale: float = ACCURACY_SCALE
    mdenas_lr: float = MDENAS_LR
    warmup_rounds: int = 0
    groups: tuple[int, ...] | None = None
    theta: np.ndarray = field(init=False)
    velocity: np.ndarray = field(init=False)
    alive: np.ndarray = field(init=False)
    todo: np.ndarray = field(init=False)
    tables: list[np.ndarray] = field(init=False)
    counts: np.ndarray = field(init=False)
    last_perf: np.ndarray = field(init=False)
    warmup_left: int = field(init=False)
    cycle: int = field(init=False)

    def __post_init__(self) -> None:
        if self.update not in UPDATE_RULES:
            raise ValueError(f"unknown update rule '{self.update}'; choose one of: {', '.join(UPDATE_RULES)}")
        if self.groups is not None and len(self.groups) != self.num_ops:
            raise ValueError(f"groups has {len(self.groups)} labels for {self.num_ops} ops")
        shape = (self.num_edges, self.num_ops)
        self.theta = np.full(shape, 1.0 / self.num_ops)
        self.velocity = np.zeros(shape)
        self.alive = np.ones(shape, dtype=bool)
        self.todo = self.alive.copy()
        self.tables = [np.zeros(shape)]
        self.counts = np.zeros(shape)
        self.last_perf = np.zeros(shape)
        self.warmup_left = self.warmup_rounds
        self.cycle = 0

    # ----------------------------------------------------------------------------- queries
    @property
    def in_warmup(self) -> bool:
        return self.warmup_left > 0

    @property
    def alive_per_edge(self) -> np.ndarray:
        return self.alive.sum(axis=1)

    @property
    def capped(self) -> bool:
        """Whether pruning keeps the last alive op of every group (the original V3, `momentum`)."""
        return self.update in GROUP_CAPPED_RULES

    @property
    def final_ops(self) -> int:
        """Ops per edge when the search stops: one per group under the cap, else 1."""
        return len(set(self.groups)) if self.capped and self.groups is not None else 1

    def prunable(self) -> np.ndarray:
        """(E, K) the alive ops a cycle may prune: any alive op of an edge with >= 2 left, or, under the
        cap, an alive op whose group has another alive op on its edge (XNAS@92720aa V3)."""
        if self.capped and self.groups is not None:
            labels = np.asarray(self.groups)
            same = labels[:, None] == labels[None, :]  # (K, K) same-group indicator
            group_alive = self.alive.astype(np.int64) @ same.astype(np.int64)  # alive ops of each op's group
            return self.alive & (group_alive >= 2)
        return self.alive & (self.alive_per_edge[:, None] >= 2)

    def finished(self) -> bool:
        """No edge has a prunable op: one op per edge (V1 stop), or one per group under the V3 cap
        (2 ops per edge on the DARTS space, spec ddpnas §1.5)."""
        return not bool(self.prunable().any())

    def best(self) -> np.ndarray:
        """Per edge, the alive op with the highest theta (ties: lowest index)."""
        return np.where(self.alive, self.theta, -np.inf).argmax(axis=1)

    # ----------------------------------------------------------------------------- one epoch
    def sample(self, generator: torch.Generator) -> torch.Tensor:
        """Draw one architecture: per edge a uniform op among those not yet drawn this round."""
        u = torch.rand(self.num_edges, generator=generator, dtype=torch.float64).numpy()
        choice = np.empty(self.num_edges, dtype=np.int64)
        for e in range(self.num_edges):
            options = np.flatnonzero(self.todo[e])
            choice[e] = options[min(int(u[e] * len(options)), len(options) - 1)]
            self.todo[e, choice[e]] = False
        return torch.from_numpy(choice)

    def record(self, sample: torch.Tensor | np.ndarray, accuracy: float) -> None:
        """Credit `accuracy` (fraction in [0, 1]) to every (edge, sampled op) (spec ddpnas §1.3)."""
        if self.in_warmup:
            return
        rows, cols = np.arange(self.num_edges), np.asarray(sample, dtype=np.int64)
        self.tables[-1][rows, cols] = accuracy
        self.counts[rows, cols] += 1
        self.last_perf[rows, cols] = accuracy
        if self.update == "mdenas":
            mdenas_step(self.theta, self.counts, self.last_perf, self.alive, self.mdenas_lr)

    def step(self) -> list[int] | None:
        """End-of-epoch bookkeeping; at the end of a pruning cycle update theta, prune one op per edge
        and return the pruned op of every edge (None otherwise)."""
        if self.todo.any():
            return None  # the round is not over
        if self.in_warmup:
            self.warmup_left -= 1
        elif len(self.tables) < self.rounds_per_prune:
            self.tables.append(np.zeros_like(self.theta))
        else:
            pruned = self._update_and_prune()
            self.todo = self.alive.copy()
            return pruned
        self.todo = self.alive.copy()
        return None

    def _update_and_prune(self) -> list[int]:
        if self.update != "mdenas":
            expected = expectation(self.tables, self.alive, self.score_scale)
            if self.update in MOMENTUM_RULES:
                self.velocity = self.gamma * self.velocity + (1.0 - self.gamma) * expected
                self.theta = self.theta + self.velocity
            else:
                self.theta = expected + SCORE_DECAY * self.theta
        pruned = []
        cycle_acc = np.mean(self.tables, axis=0)
        prunable = self.prunable()
        for e in range(self.num_edges):
            live = np.flatnonzero(prunable[e])
            if len(live) > 0:
                # lowest theta; exact ties (a saturated softmax) go to the lower cycle accuracy, then index
                op = int(min(live, key=lambda k: (self.theta[e, k], cycle_acc[e, k], k)))
                self.alive[e, op] = False
                pruned.append(op)
            else:
                pruned.append(-1)
        self.theta = self.theta / self.theta.sum(axis=1, keepdims=True)
        self.tables = [np.zeros_like(self.theta)]
        self.cycle += 1
        return pruned

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and numbers (loadable with `torch.load(weights_only=True)`)."""
        arrays = {
            k: torch.from_numpy(np.array(getattr(self, k)))
            for k in ("theta", "velocity", "alive", "todo", "counts", "last_perf")
        }
        return {
            **arrays,
            "tables": [torch.from_numpy(t.copy()) for t in self.tables],
            "warmup_left": self.warmup_left,
            "cycle": self.cycle,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("theta", "velocity", "alive", "todo", "counts", "last_perf"):
            setattr(self, key, state[key].numpy().copy())
        self.tables = [t.numpy().copy() for t in state["tables"]]
        self.warmup_left = int(state["warmup_left"])
        self.cycle = int(state["cycle"])
