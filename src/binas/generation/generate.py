"""Networks from a DDPNAS run under budgets, without retraining the supernet (spec ddpnas §2).

* Mobile space: the multiple-choice knapsack over theta (`knapsack.solve_knapsack`) under a FLOPs,
  OPs, params or latency budget; FLOPs/OPs/params per candidate come from the profiler, latency from a
  lookup table measured on this device (`latency.py`). One network per budget.
* DARTS space: the structural constraints (height <= h, exactly N non-parametric ops,
  `darts_constraints`), one cell per N; with budgets, each budget takes the best-scoring of those
  cells whose measured network fits it.

Every generated network is built (real or 1-bit, as searched), profiled and timed; its genotype is
written to `RUN_DIR/generated/<label>.json` and the table to `generated.json` / `generated.md`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from binas.generation.budgets import Budget, GenerationError, format_amount
from binas.generation.darts_constraints import constrained_genotype
from binas.generation.knapsack import solve_knapsack
from binas.generation.latency import LatencyTable, measure_latency
from binas.generation.mobile_costs import latency_costs, measure_mobile_latency, mobile_costs
from binas.generation.run_record import SearchRecord
from binas.genotype.mobilenet import MobileGenotype
from binas.metrics.complexity import profile_model
from binas.nets.mobilenet import MobileNetwork

logger = logging.getLogger(__name__)

GENERATED_DIR = "generated"
LATENCY_TABLE_FILE = "latency_table.json"
#: Non-parametric op counts the reference logs for the DARTS space (XNAS@92720aa: N in 2..6).
DEFAULT_NON_PARAM: tuple[int, ...] = (2, 3, 4, 5, 6)
#: Largest cell height with 4 intermediate nodes (a chain): no height constraint.
MAX_HEIGHT = 4


@dataclass
class GeneratedNetwork:
    """One generated network: what it answers (budget or constraints), its genotype and measurements."""

    label: str
    genotype: Any
    score: float
    measured: dict[str, float]
    budget: Budget | None = None
    predicted: float | None = None
    constraints: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "budget": None if self.budget is None else {"metric": self.budget.metric, "value": self.budget.value},
            "predicted": self.predicted,
            "score": self.score,
            "constraints": self.constraints,
            "measured": self.measured,
            "archid": self.genotype.archid,
            "genotype": self.genotype.to_dict(),
            "path": None if self.path is None else str(self.path),
        }


def measure(model: nn.Module, input_size: tuple[int, int, int, int], device: torch.device) -> dict[str, float]:
    """FLOPs, OPs, params (profiler, batch 1) and latency in ms (median, on `device`)."""
    prof = profile_model(model, input_size)
    latency = measure_latency(model.to(device), input_size, device=device)
    return {"flops": float(prof.flops), "ops": float(prof.ops), "params": float(prof.params), "latency_ms": latency}


def _input_size(record: SearchRecord, image_size: int | None, batch: int = 1) -> tuple[int, int, int, int]:
    size = image_size or record.image_size
    return (batch, record.in_channels, size, size)


def _latency_table(
    record: SearchRecord, path: Path | None, device: torch.device, image_size: int, batch_size: int
) -> LatencyTable:
    """The user's table (must match this device), else the run's cached one, measured when needed."""
    cached = record.run_dir / LATENCY_TABLE_FILE
    table = LatencyTable.load(path) if path is not None else None
    if table is None and cached.is_file():
        table = LatencyTable.load(cached)
        try:
            table.check_matches(device, batch_size)
        except GenerationError as err:
            logger.warning("re-measuring the latency table: %s", err)
            table = None
    before = 0 if table is None else len(table.entries)
    mob = record.config.space.mobilenet
    table = measure_mobile_latency(
        mob,
        num_classes=record.num_classes,
        in_channels=record.in_channels,
        image_size=image_size,
        policy=record.policy(),
        device=device,
        batch_size=batch_size,
        table=table,
    )
    if path is None and len(table.entries) != before:
        table.save(cached)
        logger.info("latency table measured on %s saved to %s", table.device, cached)
    return table


def generate_mobile(
    record: SearchRecord,
    budgets: Sequence[Budget],
    *,
    device: torch.device,
    image_size: int | None = None,
    latency_table: Path | None = None,
) -> list[GeneratedNetwork]:
    """One network per budget by the knapsack over theta (spec §2.1); an impossible budget raises."""
    if not budgets:
        raise GenerationError("the mobile space needs a budget: pass --flops, --ops, --params or --latency-ms")
    size = image_size or record.image_size
    mob, policy = record.config.space.mobilenet, record.policy()
    costs = mobile_costs(
        mob, num_classes=record.num_classes, in_channels=record.in_channels, image_size=size, policy=policy
    )
    if record.theta.shape != costs.blocks["flops"].shape:
        raise GenerationError(
            f"theta has shape {record.theta.shape} but the run's mobile space has "
            f"{costs.blocks['flops'].shape} (blocks, ops)"
        )
    if any(b.metric == "latency_ms" for b in budgets):
        table = _latency_table(record, latency_table, device, size, batch_size=1)
        fixed_ms, block_ms = latency_costs(
            mob, table, num_classes=record.num_classes, in_channels=record.in_channels, image_size=size, policy=policy
        )
        costs.fixed["latency_ms"], costs.blocks["latency_ms"] = fixed_ms, block_ms
    choices = []
    for budget in budgets:  # solve all first: an impossible budget fails before anything is written
        try:
            left = budget.value - costs.fixed[budget.metric]
            result = solve_knapsack(record.theta, costs.blocks[budget.metric], left)
        except GenerationError as err:
            raise GenerationError(
                f"budget {budget.label}: {err} (fixed stem/head cost {format_amount(costs.fixed[budget.metric])})"
            ) from None
        choices.append((budget, result))
    rows = []
    for budget, result in choices:
        genotype = MobileGenotype.from_indices(costs.candidates, result.choice)
        net = MobileNetwork(
            genotype, mob, num_classes=record.num_classes, in_channels=record.in_channels, policy=policy
        )
        score = float(sum(record.theta[i, k] for i, k in enumerate(result.choice)))
        rows.append(
            GeneratedNetwork(
                budget.label,
                genotype,
                score,
                measure(net, _input_size(record, size), device),
                budget=budget,
                predicted=costs.total(budget.metric, result.choice),
            )
        )
    return rows


def generate_darts(
    record: SearchRecord,
    budgets: Sequence[Budget],
    *,
    device: torch.device,
    height: int = MAX_HEIGHT,
    non_param: Sequence[int] = DEFAULT_NON_PARAM,
    constrain_reduce: bool = False,
    channels: int | None = None,
    layers: int | None = None,
    image_size: int | None = None,
) -> list[GeneratedNetwork]:
    """Constrained cells (spec §2.2): one per N, or per budget the best of them that fits."""
    from binas.nets import Network

    space = record.config.space
    candidates = []
    for n in sorted(set(non_param)):
        genotype, score = constrained_genotype(
            record.theta, height=height, non_param=n, constrain_reduce=constrain_reduce
        )
        net = Network(
            genotype,
            num_classes=record.num_classes,
            in_channels=record.in_channels,
            channels=channels or space.channels,
            layers=layers or space.layers,
            stem=space.stem,
            stem_multiplier=space.stem_multiplier,
            family=space.family,
            policy=record.policy(),
        )
        constraints = {"height": height, "non_param": n, "constrain_reduce": constrain_reduce}
        candidates.append(
            GeneratedNetwork(
                f"darts-h{height}-n{n}",
                genotype,
                score,
                measure(net, _input_size(record, image_size), device),
                constraints=constraints,
            )
        )
    if not budgets:
        return candidates
    rows = []
    for budget in budgets:
        fitting = [c for c in candidates if budget.allows(c.measured[budget.metric])]
        if not fitting:
            smallest = min(c.measured[budget.metric] for c in candidates)
            raise GenerationError(
                f"budget {budget.label}: no DARTS cell with height <= {height} and N in "
                f"{sorted(set(non_param))} fits (smallest {budget.metric}: "
                f"{format_amount(smallest)})"
            )
        best = max(fitting, key=lambda c: c.score)  # max keeps the first (smallest N) on ties
        rows.append(
            GeneratedNetwork(
                budget.label,
                best.genotype,
                best.score,
                best.measured,
                budget=budget,
                predicted=best.measured[budget.metric],
                constraints=best.constraints,
            )
        )
    return rows


def format_table(rows: Sequence[GeneratedNetwork]) -> str:
    """A Markdown table of the generated networks (what `binas generate` prints)."""
    cols = ("network", "budget", "score", "FLOPs", "OPs", "params", "latency (ms)", "archid", "genotype")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        m = r.measured
        budget = "-" if r.budget is None else r.budget.label
        lines.append(
            f"| {r.label} | {budget} | {r.score:.4f} | {format_amount(m['flops'])} | {format_amount(m['ops'])}"
            f" | {format_amount(m['params'])} | {m['latency_ms']:.3f} | {r.genotype.archid} | {r.genotype} |"
        )
    return "\n".join(lines)


def write_outputs(run_dir: Path, rows: Sequence[GeneratedNetwork], extra: dict[str, Any] | None = None) -> list[Path]:
    """Genotypes to `generated/<label>.json`, the table to `generated.json` and `generated.md`."""
    from binas.storage.files import write_json

    out = run_dir / GENERATED_DIR
    for r in rows:
        r.path = r.genotype.save(out / f"{r.label}.json")
    json_path, md_path = run_dir / "generated.json", run_dir / "generated.md"
    write_json(json_path, {**(extra or {}), "networks": [r.to_dict() for r in rows]})
    md_path.write_text(format_table(rows) + "\n", encoding="utf-8")
    return [json_path, md_path, *(r.path for r in rows if r.path is not None)]


def best_theta_summary(record: SearchRecord) -> dict[str, Any]:
    """Small JSON-able facts about the theta the networks were generated from."""
    return {
        "space": record.space,
        "theta_shape": list(record.theta.shape),
        "alive_per_row": np.asarray(record.alive).sum(axis=1).tolist(),
        "binary": record.binary,
    }
