"""The state of a CP-NAS / BNAS search apart from its supernets: which ops are alive, every indicator z
(Eq. 4.15) with the accuracies behind it, when each op was removed, and where the schedule stands.

`CPNAS` trains and scores sampled paths and records them here; `cpnas_report` turns the table into
metrics, `indicators.json`, `pruning.json` and the heat map; the checkpoint holds `state_dict()`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

import binas.strategies.cpnas_schedule as sched
from binas.errors import ConfigError
from binas.space.primitives import CELL_KINDS


class IndicatorTable:
    """Indicators and pruning state, indexed (stage, round, cell kind, edge, op).

    Attributes:
        primitives: every op of the space; `candidates` the ones searched (K at the start).
        edges: (source, destination) node of each edge, DARTS order.
        rounds: T, rounds of sampling without replacement per stage.
        beta_p, indicator_sign: the indicator's weighting (`sched.indicator`).
        alive: (kinds, E, M) bool, the ops still in the search.
        z, acc_parent, acc_child: (stages, T, kinds, E, M) float64; NaN where the op was not sampled (A_P
            stays NaN without a Parent).
        pruned_at: (kinds, E, M) the stage that removed each op; `sched.ALIVE` / `sched.EXCLUDED`.
        order: (kinds, E, K) op indices of the current round, or None between rounds.
        done: sampled architectures completed.
        last: the latest sample's position, ops and (at the end of a stage) the removed ops.
    """

    def __init__(
        self,
        primitives: tuple[str, ...],
        candidates: tuple[str, ...],
        edges: tuple[tuple[int, int], ...],
        rounds: int,
        beta_p: float,
        indicator_sign: sched.IndicatorSign,
    ) -> None:
        self.primitives, self.candidates, self.edges = primitives, candidates, edges
        self.rounds, self.beta_p, self.indicator_sign = rounds, beta_p, indicator_sign
        shape = (len(CELL_KINDS), len(edges), len(primitives))
        self.alive = torch.tensor([op in candidates for op in primitives]).expand(shape).clone()
        self.z = torch.full((sched.num_stages(self.num_candidates), rounds, *shape), float("nan"), dtype=torch.float64)
        self.acc_parent = torch.full_like(self.z, float("nan"))
        self.acc_child = torch.full_like(self.z, float("nan"))
        self.pruned_at = torch.where(self.alive, sched.ALIVE, sched.EXCLUDED).long()
        self.order: Tensor | None = None
        self.done = 0
        self.last: dict[str, Any] = {}

    @property
    def num_candidates(self) -> int:
        return len(self.candidates)

    def schedule_length(self) -> int:
        """T (K + ... + 2) sampled architectures."""
        return sched.schedule_length(self.num_candidates, self.rounds)

    def finished(self) -> bool:
        return self.done >= self.schedule_length()

    def position(self) -> sched.Position:
        """Where the next sample falls in the schedule."""
        return sched.position(self.done, self.num_candidates, self.rounds)

    def round_order(self, generator_seed: int) -> Tensor:
        """The current round's sampling order (drawn once per round without replacement)."""
        if self.order is None:
            self.order = sched.sampling_order(self.alive, torch.Generator().manual_seed(generator_seed))
        return self.order

    def record(self, pos: sched.Position, ops: Tensor, acc_parent: float | None, acc_child: float) -> float:
        """Score one sampled architecture (op indices (kinds, E)): the same z for every op it used (Eq. 4.15);
        prune at the end of a stage. Returns z."""
        z = sched.indicator(
            acc_child if acc_parent is None else acc_parent, acc_child, self.beta_p, self.indicator_sign
        )
        kinds = torch.arange(len(CELL_KINDS))[:, None]
        edges = torch.arange(len(self.edges))[None, :]
        self.z[pos.stage, pos.round][kinds, edges, ops] = z
        self.acc_child[pos.stage, pos.round][kinds, edges, ops] = acc_child
        if acc_parent is not None:
            self.acc_parent[pos.stage, pos.round][kinds, edges, ops] = acc_parent
        self.done += 1
        self.last = {"position": pos, "ops": ops}
        if pos.ends_round:
            self.order = None
        if pos.ends_stage(self.rounds):
            self._prune(pos.stage)
        return z

    def _prune(self, stage: int) -> None:
        """End of a stage: e(.) from the T-round mean (Eq. 4.16); drop the worst op of every edge."""
        self.alive, worst = sched.prune_worst(self.stage_e(stage), self.alive)
        self.pruned_at.scatter_(-1, worst.unsqueeze(-1), stage)
        self.last["pruned"] = worst

    def stage_alive(self, stage: int) -> Tensor:
        """The ops that were still in the search during `stage`."""
        return (self.pruned_at == sched.ALIVE) | (self.pruned_at >= stage)

    def stage_e(self, stage: int) -> Tensor:
        """e(.) of Eq. 4.16 for `stage`, from the z its ops received (all T rounds once the stage is over)."""
        return sched.normalized_indicator(sched.mean_indicator(self.z[stage]), self.stage_alive(stage))

    def current_e(self) -> Tensor:
        """The latest e(.) of the remaining ops: the mean of every z received in the current stage so far
        (a partial round included); ops not sampled yet in this stage keep the previous stage's mean."""
        if self.finished():
            return self.stage_e(sched.num_stages(self.num_candidates) - 1)
        stage = self.position().stage
        z_bar = sched.mean_indicator(self.z[stage])
        if stage > 0:
            z_bar = z_bar.where(~z_bar.isnan(), sched.mean_indicator(self.z[stage - 1]))
        return sched.normalized_indicator(z_bar, self.alive)

    def genotype_weights(self) -> list[Tensor]:
        """Per cell kind, the (E, M) weights the DARTS rule derives the genotype from: A9 when one op per
        edge remains, else the current e(.) with the removed ops masked (the search's best guess)."""
        e = self.current_e()
        if not self.finished():
            return [e[i] for i in range(len(CELL_KINDS))]
        none = self.primitives.index("none") if "none" in self.primitives else None
        return [sched.final_weights(e[i], self.alive[i], none) for i in range(len(CELL_KINDS))]

    def state_dict(self) -> dict[str, Any]:
        return {
            "alive": self.alive.clone(),
            "z": self.z.clone(),
            "pruned_at": self.pruned_at.clone(),
            "acc_parent": self.acc_parent.clone(),
            "acc_child": self.acc_child.clone(),
            "order": None if self.order is None else self.order.clone(),
            "done": self.done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["z"].shape) != tuple(self.z.shape):
            raise ConfigError(
                f"checkpoint indicator table has shape {tuple(state['z'].shape)}, expected {tuple(self.z.shape)}: "
                "resume with the options of the interrupted run"
            )
        self.alive = state["alive"].clone()
        self.z = state["z"].clone()
        # Checkpoints from before the accuracy tables: the dependence metrics of old stages are left out.
        self.acc_parent = state.get("acc_parent", torch.full_like(self.z, float("nan"))).clone()
        self.acc_child = state.get("acc_child", torch.full_like(self.z, float("nan"))).clone()
        self.pruned_at = state["pruned_at"].clone()
        self.order = None if state["order"] is None else state["order"].clone()
        self.done = int(state["done"])
