"""Plots: curve grouping, heat maps of per-edge weights, and `draw_run_plots` on a fabricated run."""

from __future__ import annotations

import json
import math

import pytest

from binas.engine.metrics_log import MetricLogger
from binas.errors import BinasError
from binas.genotype import get_entry
from binas.plots import draw_run_plots, plot_curves, plot_weights_final, plot_weights_over_epochs
from binas.plots.curves import collect_series, group_series
from binas.plots.heatmaps import edge_labels, is_matrix
from binas.space.primitives import PRIMITIVES

EDGES, OPS = 14, len(PRIMITIVES)
PNG_MAGIC = b"\x89PNG"


def table(epoch: int) -> list[list[float]]:
    return [[(e + o + epoch) / 30 for o in range(OPS)] for e in range(EDGES)]


def fake_search_dir(path, epochs: int = 3):
    with MetricLogger(path / "metrics.jsonl") as log:
        for epoch in range(epochs):
            log.log(
                epoch=epoch,
                seconds=1.0,
                train_loss=2.0 - epoch / 10,
                val_loss=2.1 - epoch / 10,
                train_acc=10.0 + epoch,
                D=0.5 / (epoch + 1),
                alpha={"normal": table(epoch)},
            )
    (path / "alpha.json").write_text(
        json.dumps({"normal": table(0), "reduce": table(1), "primitives": list(PRIMITIVES)})
    )
    get_entry("darts-v2").genotype.save(path / "genotype.json")
    (path / "search_summary.json").write_text("{}")


def test_series_and_panels_group_losses_and_accuracies():
    records = [
        {"epoch": 0, "train_loss": 1.0, "val_acc": 5.0, "D": 0.1},
        {"epoch": 1, "train_loss": 0.5, "val_loss": 0.7, "val_acc": 6.0, "flag": True},
    ]
    xs, series = collect_series(records)
    assert xs == [0.0, 1.0]
    assert math.isnan(series["val_loss"][0]) and "flag" not in series and "epoch" not in series
    assert group_series(series) == [("loss", ["train_loss", "val_loss"]), ("accuracy", ["val_acc"]), ("D", ["D"])]


def test_edge_labels_name_the_darts_edges():
    labels = edge_labels(EDGES)
    assert labels[0] == "c_{k-2}->0" and labels[-1] == "2->3" and len(labels) == EDGES
    assert edge_labels(4) == [f"edge {i}" for i in range(4)]
    assert is_matrix(table(0)) and not is_matrix([[1, 2], [3]]) and not is_matrix([[True]]) and not is_matrix([])


def test_plot_functions_write_pngs(tmp_path):
    assert plot_curves([{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 0.5}], tmp_path / "c.png").exists()
    assert plot_curves([{"epoch": 0}], tmp_path / "none.png") is None
    final = plot_weights_final({"normal": table(0), "reduce": table(1)}, tmp_path / "f.png", primitives=PRIMITIVES)
    over = plot_weights_over_epochs([0, 1, 2], [table(e) for e in range(3)], tmp_path / "o.png")
    assert final.read_bytes()[:4] == PNG_MAGIC and over.read_bytes()[:4] == PNG_MAGIC


def test_draw_run_plots_on_a_search_dir(tmp_path):
    fake_search_dir(tmp_path)
    names = {p.name for p in draw_run_plots(tmp_path)}
    assert names == {
        "search_curves.png",
        "search_alpha_normal_epochs.png",
        "search_alpha.png",
        "normal.png",
        "reduce.png",
    }
    assert all((tmp_path / "plots" / n).read_bytes()[:4] == PNG_MAGIC for n in names)


def test_draw_run_plots_on_a_pipeline_dir_uses_both_parts(tmp_path):
    (tmp_path / "search").mkdir()
    (tmp_path / "train").mkdir()
    fake_search_dir(tmp_path / "search", epochs=2)
    with MetricLogger(tmp_path / "train" / "metrics.jsonl") as log:
        log.log(epoch=0, train_loss=1.0, top1=50.0)
    names = {p.name for p in draw_run_plots(tmp_path)}
    assert {"search_curves.png", "train_curves.png", "normal.png"} <= names


def test_draw_run_plots_errors(tmp_path):
    with pytest.raises(BinasError, match="not found"):
        draw_run_plots(tmp_path / "missing")
    with pytest.raises(BinasError, match="nothing to plot"):
        draw_run_plots(tmp_path)


def test_mechanism_panels_draw_the_logged_magnitudes_and_leave_them_out_of_the_curves(tmp_path):
    from binas.plots.mechanisms import mechanism_panels, plot_mechanisms, without_mechanisms

    records = [
        {
            "epoch": 0,
            "child_train_loss": 2.0,
            "tangent_ratio": 0.03,
            "tangent_distance": 0.5,
            "parent_backtrack_per_round": 0.07,
            "child_backtrack_per_round": 0.06,
            "child_sign_flip_fraction": 2e-4,
            "child_recon_kd_ratio": 0.05,
        },
        {
            "epoch": 1,
            "child_train_loss": 1.8,
            "tangent_ratio": 0.02,
            "tangent_distance": 0.4,
            "parent_backtrack_per_round": 0.04,
            "child_backtrack_per_round": 0.03,
            "child_sign_flip_fraction": 1e-4,
            "child_recon_kd_ratio": 0.06,
            "z_dep": {"spearman_child": 0.5, "kendall_child": 0.4},
        },
    ]
    panels = {p.spec.title: p for p in mechanism_panels(records)}
    ratio = panels["tangent correction / child gradient"]
    assert ratio.xs == [0.0, 1.0] and ratio.series == {"tangent_ratio": [0.03, 0.02]} and ratio.spec.log
    backtrack = panels["decoupled backtrack per round"]
    assert backtrack.series == {"parent_backtrack_per_round": [0.07, 0.04], "child_backtrack_per_round": [0.06, 0.03]}
    rho = panels["rank correlation of z per stage"].series
    assert list(rho) == ["z_dep/spearman_child"] and rho["z_dep/spearman_child"][1] == 0.5
    assert math.isnan(rho["z_dep/spearman_child"][0])
    assert "backtrack coefficient κ = η ψ̃" not in panels  # nothing logged, no empty panel
    assert without_mechanisms(records[1]) == {"epoch": 1, "child_train_loss": 1.8}
    png = plot_mechanisms(records, tmp_path / "m.png")
    assert png is not None and png.read_bytes()[:4] == PNG_MAGIC
    assert plot_mechanisms([{"epoch": 0, "train_loss": 1.0}], tmp_path / "none.png") is None
