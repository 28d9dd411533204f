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
from typing import TYPE_CHECKING, Any

from torch import Tensor

from binas.engine.rundir import write_json
from binas.space.arch_params import CELL_KINDS
from binas.strategies import cpnas_schedule as sched

if TYPE_CHECKING:
    from binas.strategies.cpnas import CPNAS

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


def _names(strategy: CPNAS, ops: Tensor) -> dict[str, list[str]]:
    """(kinds, E) op indices -> op names per cell kind."""
    return {kind: [strategy.primitives[m] for m in ops[i].tolist()] for i, kind in enumerate(CELL_KINDS)}


def epoch_record(strategy: CPNAS) -> dict[str, Any]:
    """Per-sample fields for metrics.jsonl: the schedule position and the sampled ops; at the end of a
    round that round's z table; at the end of a stage the stage's e(.) table and the removed ops."""
    last = strategy._last
    if not last:
        return {}
    pos: sched.Position = last["position"]
    record: dict[str, Any] = {"stage": pos.stage, "round": pos.round, "sample": pos.sample,
                              "sampled_ops": _names(strategy, last["ops"])}
    if pos.ends_round:
        record["round_indicators"] = _by_kind(strategy.z[pos.stage, pos.round])
    if "pruned" in last:
        record["stage_e"] = _by_kind(strategy.stage_e(pos.stage))
        record["removed_ops"] = _names(strategy, last["pruned"])
        record["z_dep"] = dependence(strategy, pos.stage)
    return record


def dependence(strategy: CPNAS, stage: int, rounds: int | None = None) -> dict[str, float]:
    """The `z_dep` fields (module docstring) of `stage`, from its first `rounds` rounds (None: all T).
    An accuracy with no values for an alive op (no Parent, or an older checkpoint) is left out."""
    alive = strategy.stage_alive(stage)
    z_bar = sched.mean_indicator(strategy.z[stage, :rounds])
    removed = sched.pruned_by(z_bar, alive)
    out: dict[str, float] = {}
    means = {name: sched.mean_indicator(table[stage, :rounds])
             for name, table in (("child", strategy.acc_child), ("parent", strategy.acc_parent))}
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


def indicators(strategy: CPNAS) -> dict[str, Any]:
    """The content of indicators.json: every round's z, and each stage's z-bar and e(.) (Eqs. 4.15-4.16)."""
    rounds = strategy.options.rounds
    stages = []
    for stage in range(sched.num_stages(strategy.num_candidates)):
        z = strategy.z[stage]
        done = [t for t in range(rounds) if not bool(z[t].isnan().all())]
        if not done:
            break
        alive = strategy.stage_alive(stage)
        z_bar = sched.mean_indicator(z[: done[-1] + 1])
        accs = {f"{name}_acc_mean": _by_kind(sched.mean_indicator(table[stage, : done[-1] + 1])
                                             .masked_fill(~alive, float("nan")))
                for name, table in (("parent", strategy.acc_parent), ("child", strategy.acc_child))}
        stages.append({
            "stage": stage, "ops_per_edge": strategy.num_candidates - stage,
            "rounds": [_by_kind(z[t]) for t in done],
            "z_mean": _by_kind(z_bar.masked_fill(~alive, float("nan"))),
            "e": _by_kind(sched.normalized_indicator(z_bar, alive).masked_fill(~alive, float("nan"))),
            **accs,
            "z_dep": dependence(strategy, stage, done[-1] + 1),
        })
    w_parent, w_child = sched.indicator_weights(strategy.beta_p, strategy.indicator_sign)
    return {"method": strategy.name, "candidates": list(strategy.candidates),
            "beta_p": strategy.beta_p, "indicator_sign": strategy.indicator_sign,
            "z_weight_parent": w_parent, "z_weight_child": w_child,
            "rounds_per_stage": rounds, "samples_done": strategy.done, "finished": strategy.finished(),
            "primitives": list(strategy.primitives), "edges": [list(e) for e in strategy.topology.edges],
            "stages": stages}


def pruning(strategy: CPNAS) -> dict[str, Any]:
    """The content of pruning.json: which op each stage removed from each edge, with its e(.)."""
    order = []
    for stage in range(int(strategy.pruned_at.max()) + 1):
        e = strategy.stage_e(stage)
        removed = {}
        for i, kind in enumerate(CELL_KINDS):
            rows = []
            for edge, (src, dst) in enumerate(strategy.topology.edges):
                m = int((strategy.pruned_at[i, edge] == stage).nonzero().flatten()[0])
                rows.append({"edge": edge, "from": src, "to": dst, "op": strategy.primitives[m],
                             "e": round(float(e[i, edge, m]), DECIMALS)})
            removed[kind] = rows
        order.append({"stage": stage, "ops_before": strategy.num_candidates - stage, "removed": removed})
    remaining = {kind: [[strategy.primitives[m] for m in row.nonzero().flatten().tolist()]
                        for row in strategy.alive[i]] for i, kind in enumerate(CELL_KINDS)}
    return {"primitives": list(strategy.primitives), "edges": [list(e) for e in strategy.topology.edges],
            "finished": strategy.finished(), "order": order, "remaining": remaining}


def write_artifacts(strategy: CPNAS, run_dir: Path) -> list[Path]:
    """Write indicators.json, pruning.json and the heat map; a plotting failure only logs a warning."""
    paths = [run_dir / INDICATORS_NAME, run_dir / PRUNING_NAME]
    write_json(paths[0], indicators(strategy))
    write_json(paths[1], pruning(strategy))
    try:
        paths.append(save_heatmap(strategy, run_dir / HEATMAP_NAME))
    except Exception as exc:  # noqa: BLE001 - the plot is a convenience, the tables are saved
        logger.warning("could not draw the indicator heat map: %s", exc)
    return paths


def last_z_mean(strategy: CPNAS) -> Tensor:
    """(kinds, E, M) z-bar of each op in the last stage it took part in (NaN if never sampled)."""
    out = sched.mean_indicator(strategy.z[0])
    for stage in range(1, sched.num_stages(strategy.num_candidates)):
        z_bar = sched.mean_indicator(strategy.z[stage])
        out = z_bar.where(~z_bar.isnan(), out)
    return out


def save_heatmap(strategy: CPNAS, path: Path) -> Path:
    """Heat map per cell kind: colour = z-bar of each op in its last stage; text = the stage that removed
    it (`*`: still in the search, `x`: not a candidate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = last_z_mean(strategy).numpy()
    num_edges, num_ops = values.shape[1:]
    fig, axes = plt.subplots(1, len(CELL_KINDS), figsize=(2 * CELL_INCH * num_ops + 2, CELL_INCH * num_edges + 1.5),
                             squeeze=False)
    finite = values[~(values != values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = None
    for i, kind in enumerate(CELL_KINDS):
        ax = axes[0, i]
        image = ax.imshow(values[i], cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for e in range(num_edges):
            for m in range(num_ops):
                stage = int(strategy.pruned_at[i, e, m])
                label = {sched.ALIVE: "*", sched.EXCLUDED: "x"}.get(stage, str(stage))
                ax.text(m, e, label, ha="center", va="center", fontsize=7, color="w")
        ax.set_xticks(range(num_ops), strategy.primitives, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(num_edges), [f"{s}->{d}" for s, d in strategy.topology.edges], fontsize=7)
        ax.set_title(f"{kind} cell", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label="mean indicator z (last stage of each op)")
    fig.suptitle(f"{strategy.name}: indicators (numbers: stage that removed the op, *: kept)", fontsize=9)
    fig.savefig(path, dpi=HEATMAP_DPI, bbox_inches="tight")
    plt.close(fig)
    return path
