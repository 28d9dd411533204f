"""One figure per search run that shows each method mechanism at work (`<part>_mechanisms.png`).

A mechanism whose formula is right can still do nothing because of a scale, so every run logs how much
each one acts, and this figure draws those magnitudes with their units:

* DCP-NAS tangent propagation: ‖λ H_C ∂D/∂g_C‖ / ‖g_C‖ (log scale) and D(g_C, g_P) per epoch;
* DCP-NAS decoupled optimization: the backtrack accumulated over a round relative to ‖α‖, κ = η ψ̃, and how
  far ψ̃ moved in the round;
* DCP-NAS reconstruction loss: ‖μ ∇L_R‖ / ‖∇KD‖ on the Child's binary weights, and the fraction of binary
  weights that changed sign in the Child round;
* CP-NAS indicator: the weight of the Child's accuracy in z, and z's rank correlation with A_C and A_P.

The keys drawn here are left out of the generic curves (`binas.plots.curves`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binas.plots.curves import collect_series
from binas.plots.figure import new_figure, save


@dataclass(frozen=True)
class PanelSpec:
    """A panel: its title, the y-axis label (with units), the metric keys it draws, log scale or not."""

    title: str
    ylabel: str
    keys: tuple[str, ...]
    log: bool = False


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("tangent correction / child gradient", "‖λ H ∂D/∂g_C‖ / ‖g_C‖", ("tangent_ratio",), log=True),
    PanelSpec("tangent distance D(g_C, g_P)", "D (squared F-norm)", ("tangent_distance",)),
    PanelSpec(
        "decoupled backtrack per round", "Σ ‖α̃ − α‖ / ‖α‖", ("parent_backtrack_per_round", "child_backtrack_per_round")
    ),
    PanelSpec("backtrack coefficient κ = η ψ̃", "κ per step", ("parent_kappa_mean", "child_kappa_mean"), log=True),
    PanelSpec("ψ̃ change per round", "‖ψ̃_end − ψ̃_start‖ / ‖ψ̃_start‖", ("parent_psi_change", "child_psi_change")),
    PanelSpec("reconstruction vs distillation gradient", "‖μ ∇L_R‖ / ‖∇KD‖", ("child_recon_kd_ratio",), log=True),
    PanelSpec("Child binary weights that changed sign", "fraction per round", ("child_sign_flip_fraction",)),
    PanelSpec("weight of the Child's accuracy in z", "w_C in z = w_P A_P + w_C A_C", ("z_weight_child",)),
    PanelSpec("rank correlation of z per stage", "Spearman ρ", ("z_dep/spearman_child", "z_dep/spearman_parent")),
    PanelSpec("pruned op differs from A_P alone", "fraction of edges", ("z_dep/pruned_differs_parent",)),
)
MECHANISM_KEYS = frozenset(k for p in PANELS for k in p.keys)
#: Top-level record keys left to this figure (a nested `z_dep` goes whole: its Kendall twins are not drawn).
_TOP_LEVEL = frozenset(k.split("/")[0] for k in MECHANISM_KEYS)


def without_mechanisms(record: Mapping[str, Any]) -> dict[str, Any]:
    """`record` without the keys this figure draws, for the generic curves."""
    return {k: v for k, v in record.items() if k not in _TOP_LEVEL}


@dataclass(frozen=True)
class Panel:
    """The data behind one drawn panel: x values and one series per present key (NaN where missing)."""

    spec: PanelSpec
    xs: list[float]
    series: dict[str, list[float]]


def mechanism_panels(records: Sequence[Mapping[str, Any]]) -> list[Panel]:
    """The panels of `PANELS` for which `records` (metrics.jsonl lines) hold at least one finite value."""
    xs, series = collect_series(records)
    panels = []
    for spec in PANELS:
        present = {k: series[k] for k in spec.keys if k in series and any(math.isfinite(v) for v in series[k])}
        if present:
            panels.append(Panel(spec, xs, present))
    return panels


def plot_mechanisms(records: Sequence[Mapping[str, Any]], path: str | Path, *, title: str = "") -> Path | None:
    """Draw `mechanism_panels(records)` into a PNG; None when the run logs no mechanism (e.g. DARTS)."""
    from matplotlib.ticker import MaxNLocator

    panels = mechanism_panels(records)
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = new_figure(rows, cols)
    for index, panel in enumerate(panels):
        ax = fig.add_subplot(rows, cols, index + 1)
        for key, values in panel.series.items():
            points = [(x, v) for x, v in zip(panel.xs, values) if math.isfinite(v)]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=key)
        positive = all(v > 0 for vs in panel.series.values() for v in vs if math.isfinite(v))
        if panel.spec.log and positive:
            ax.set_yscale("log")
        ax.set_title(panel.spec.title, fontsize=10)
        ax.set_ylabel(panel.spec.ylabel, fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(panel.series) > 1:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path)
