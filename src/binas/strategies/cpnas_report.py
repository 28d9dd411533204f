"""What a CP-NAS run records: per-epoch metric fields, `indicators.json`, `pruning.json`, a heat map.

Tables are indexed like the search: cell kind (`normal`, `reduce`), edge (DARTS order, `edges` gives
(source, destination) nodes), op (`primitives`). Ops not sampled / already removed are `null`.

How much the indicator depends on the 1-bit Child (metrics.jsonl):
* `z_weight_child` (every sample): w_C in z = w_P A_P + w_C A_C, i.e. 1 - beta_P as printed, 1 + beta_P
  penalising the gap, 1 for BNAS; 0 means the Child is ignored.
* `z_dep` (at the end of each stage), over the stage's per-op means (T rounds) of z, A_C and A_P:
  `spearman_child` / `spearman_parent`: Spearman's rho of mean z against mean A_C / A_P across the alive
  ops of an edge, averaged over the edges where it is defined (1: z ranks the ops as that accuracy does);
  `pruned_differs_parent`: the fraction of edges whose removed op differs from the one the mean A_P alone
  would remove (0 at beta_P = 1 as printed); `kendall_child` / `kendall_parent`: as the Spearman keys with
  Kendall's tau-b. The `_parent` keys are absent without a Parent (BNAS).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from torch import Tensor

import binas.strategies.cpnas_schedule as sched
from binas.space.primitives import CELL_KINDS
from binas.storage.files import write_json
from binas.strategies.cpnas_table import IndicatorTable

logger = logging.getLogger(__name__)

INDICATORS_NAME = "indicators.json"
PRUNING_NAME = "pruning.json"
HEATMAP_NAME = "indicators.png"
#: Decimals kept in the JSON tables (accuracies are fractions of a few hundred validation images).
DECIMALS = 6
#: Heat-map geometry: inches per table cell and the figure's dots per inch.
CELL_INCH, HEATMAP_DPI = 0.55, 120


def _table(values: Tensor) -> list[list[float | None]]:
    """An (E, M) tensor as nested lists, NaN -> null."""
    return [[None if math.isnan(v) else round(v, DECIMALS) for v in row] for row in values.double().tolist()]


def _by_kind(values: Tensor) -> dict[str, list[list[float | None]]]:
    return {kind: _table(values[i]) for i, kind in enumerate(CELL_KINDS)}


def _names(table: IndicatorTable, ops: Tensor) -> dict[str, list[str]]:
    """(kinds, E) op indices -> op names per cell kind."""
    return {kind: [table.primitives[m] for m in ops[i].tolist()] for i, kind in enumerate(CELL_KINDS)}


def epoch_record(table: IndicatorTable) -> dict[str, Any]:
    """Per-sample fields for metrics.jsonl: the schedule position and the sampled ops; at the end of a
    round that round's z table; at the end of a stage the stage's e(.) table and the removed ops."""
    last = table.last
    if not last:
        return {}
    pos: sched.Position = last["position"]
    record: dict[str, Any] = {
        "stage": pos.stage,
        "round": pos.round,
        "sample": pos.sample,
        "sampled_ops": _names(table, last["ops"]),
    }
    if pos.ends_round:
        record["round_indicators"] = _by_kind(table.z[pos.stage, pos.round])
    if "pruned" in last:
        record["stage_e"] = _by_kind(table.stage_e(pos.stage))
        record["removed_ops"] = _names(table, last["pruned"])
        record["z_dep"] = dependence(table, pos.stage)
    return record


def dependence(table: IndicatorTable, stage: int, rounds: int | None = None) -> dict[str, float]:
    """The `z_dep` fields (module docstring) of `stage`, from its first `rounds` rounds (None: all T).
    An accuracy with no values for an alive op (no Parent, or an older checkpoint) is left out."""
    alive = table.stage_alive(stage)
    z_bar = sched.mean_indicator(table.z[stage, :rounds])
    removed = sched.pruned_by(z_bar, alive)
    out: dict[str, float] = {}
    means = {
        name: sched.mean_indicator(table[stage, :rounds])
        for name, table in (("child", table.acc_child), ("parent", table.acc_parent))
    }
    usable = {name: not bool(bar[alive].isnan().any()) for name, bar in means.items()}
    for name, bar in means.items():
        if usable[name]:
            out[f"spearman_{name}"] = round(sched.edge_rank_correlation(z_bar, bar, alive, "spearman"), DECIMALS)
    if usable["parent"]:
        differs = sched.pruned_by(means["parent"], alive) != removed
        out["pruned_differs_parent"] = round(float(differs.double().mean()), DECIMALS)
    for name, bar in means.items():
        if usable[name]:
            out[f"kendall_{name}"] = round(sched.edge_rank_correlation(z_bar, bar, alive, "kendall"), DECIMALS)
    return out


def indicators(name: str, table: IndicatorTable) -> dict[str, Any]:
    """The content of indicators.json: every round's z, and each stage's z-bar and e(.) (Eqs. 4.15-4.16)."""
    rounds = table.rounds
    stages = []
    for stage in range(sched.num_stages(table.num_candidates)):
        z = table.z[stage]
        done = [t for t in range(rounds) if not bool(z[t].isnan().all())]
        if not done:
            break
        alive = table.stage_alive(stage)
        z_bar = sched.mean_indicator(z[: done[-1] + 1])
        accs = {
            f"{name}_acc_mean": _by_kind(
                sched.mean_indicator(table[stage, : done[-1] + 1]).masked_fill(~alive, float("nan"))
            )
            for name, table in (("parent", table.acc_parent), ("child", table.acc_child))
        }
        stages.append(
            {
                "stage": stage,
                "ops_per_edge": table.num_candidates - stage,
                "rounds": [_by_kind(z[t]) for t in done],
                "z_mean": _by_kind(z_bar.masked_fill(~alive, float("nan"))),
                "e": _by_kind(sched.normalized_indicator(z_bar, alive).masked_fill(~alive, float("nan"))),
                **accs,
                "z_dep": dependence(table, stage, done[-1] + 1),
            }
        )
    w_parent, w_child = sched.indicator_weights(table.beta_p, table.indicator_sign)
    return {
        "method": name,
        "candidates": list(table.candidates),
        "beta_p": table.beta_p,
        "indicator_sign": table.indicator_sign,
        "z_weight_parent": w_parent,
        "z_weight_child": w_child,
        "rounds_per_stage": rounds,
        "samples_done": table.done,
        "finished": table.finished(),
        "primitives": list(table.primitives),
        "edges": [list(e) for e in table.edges],
        "stages": stages,
    }


def pruning(table: IndicatorTable) -> dict[str, Any]:
    """The content of pruning.json: which op each stage removed from each edge, with its e(.)."""
    order = []
    for stage in range(int(table.pruned_at.max()) + 1):
        e = table.stage_e(stage)
        removed = {}
        for i, kind in enumerate(CELL_KINDS):
            rows = []
            for edge, (src, dst) in enumerate(table.edges):
                m = int((table.pruned_at[i, edge] == stage).nonzero().flatten()[0])
                rows.append(
                    {
                        "edge": edge,
                        "from": src,
                        "to": dst,
                        "op": table.primitives[m],
                        "e": round(float(e[i, edge, m]), DECIMALS),
                    }
                )
            removed[kind] = rows
        order.append({"stage": stage, "ops_before": table.num_candidates - stage, "removed": removed})
    remaining = {
        kind: [[table.primitives[m] for m in row.nonzero().flatten().tolist()] for row in table.alive[i]]
        for i, kind in enumerate(CELL_KINDS)
    }
    return {
        "primitives": list(table.primitives),
        "edges": [list(e) for e in table.edges],
        "finished": table.finished(),
        "order": order,
        "remaining": remaining,
    }


def write_artifacts(name: str, table: IndicatorTable, run_dir: Path) -> list[Path]:
    """Write indicators.json, pruning.json and the heat map; a plotting failure only logs a warning."""
    paths = [run_dir / INDICATORS_NAME, run_dir / PRUNING_NAME]
    write_json(paths[0], indicators(name, table))
    write_json(paths[1], pruning(table))
    try:
        paths.append(save_heatmap(name, table, run_dir / HEATMAP_NAME))
    except Exception as exc:  # noqa: BLE001 - the plot is a convenience, the tables are saved
        logger.warning("could not draw the indicator heat map: %s", exc)
    return paths


def last_z_mean(table: IndicatorTable) -> Tensor:
    """(kinds, E, M) z-bar of each op in the last stage it took part in (NaN if never sampled)."""
    out = sched.mean_indicator(table.z[0])
    for stage in range(1, sched.num_stages(table.num_candidates)):
        z_bar = sched.mean_indicator(table.z[stage])
        out = z_bar.where(~z_bar.isnan(), out)
    return out


def save_heatmap(name: str, table: IndicatorTable, path: Path) -> Path:
    """Heat map per cell kind: colour = z-bar of each op in its last stage; text = the stage that removed
    it (`*`: still in the search, `x`: not a candidate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = last_z_mean(table).numpy()
    num_edges, num_ops = values.shape[1:]
    fig, axes = plt.subplots(
        1, len(CELL_KINDS), figsize=(2 * CELL_INCH * num_ops + 2, CELL_INCH * num_edges + 1.5), squeeze=False
    )
    finite = values[~(values != values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = None
    for i, kind in enumerate(CELL_KINDS):
        ax = axes[0, i]
        image = ax.imshow(values[i], cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for e in range(num_edges):
            for m in range(num_ops):
                stage = int(table.pruned_at[i, e, m])
                label = {sched.ALIVE: "*", sched.EXCLUDED: "x"}.get(stage, str(stage))
                ax.text(m, e, label, ha="center", va="center", fontsize=7, color="w")
        ax.set_xticks(range(num_ops), table.primitives, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(num_edges), [f"{s}->{d}" for s, d in table.edges], fontsize=7)
        ax.set_title(f"{kind} cell", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label="mean indicator z (last stage of each op)")
    fig.suptitle(f"{name}: indicators (numbers: stage that removed the op, *: kept)", fontsize=9)
    fig.savefig(path, dpi=HEATMAP_DPI, bbox_inches="tight")
    plt.close(fig)
    return path
