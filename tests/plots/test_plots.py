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
from binas.plots.heatmaps import color_range, edge_labels, is_matrix
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
    panels = group_series(series)
    assert [(p.title, p.ylabel, p.keys) for p in panels] == [
        ("accuracy", "%", ["val_acc"]),
        ("loss", "loss", ["train_loss", "val_loss"]),
        ("D", "", ["D"]),
    ]


def test_panels_keep_units_apart_and_scales_readable():
    series = {
        "train_loss": [2.3, 2.1],
        "child_recon_loss": [300.0, 290.0],  # a loss 100x larger gets its own panel
        "child_val_acc": [12.0, 15.0],
        "alpha_entropy_normal": [2.0794, 2.0793],
        "child_grad_norm": [0.04, 0.03],
        "tangent_correction_norm": [2e-4, 1e-4],
        "seconds": [4.0, 4.1],
        "child_seconds": [3.0, 3.1],
        "stage": [0.0, 1.0],
    }
    panels = {p.title: p for p in group_series(series)}
    assert panels["loss"].keys == ["train_loss"] and panels["reconstruction loss L_R"].keys == ["child_recon_loss"]
    assert panels["accuracy"].ylabel == "%"
    assert panels["α entropy per edge"].from_zero  # a near-uniform α is drawn near the top of [0, log M]
    assert panels["gradient norms"].log and panels["gradient norms"].keys == [
        "child_grad_norm",
        "tangent_correction_norm",
    ]
    assert list(panels)[-1] == "time per epoch" and panels["time per epoch"].keys == ["seconds", "child_seconds"]
    assert panels["sampling schedule"].keys == ["stage"]
    mixed = {"a_loss": [1.0], "b_loss": [50.0], "c_loss": [2.0]}
    assert [p.keys for p in group_series(mixed)] == [["a_loss", "c_loss"], ["b_loss"]]


def test_probability_tables_use_the_full_unit_scale():
    uniform = [[1 / 8 + (0.002 if o == 0 else -0.002 / 7) for o in range(8)] for _ in range(14)]
    assert color_range(uniform) == (0.0, 1.0)  # not 0.123-0.127: a near-uniform alpha looks undecided
    theta = [[0.1 * o for o in range(8)] for _ in range(2)]  # not rows of probabilities
    assert color_range(theta) == pytest.approx((0.0, 0.7))
    assert color_range([[3.0, 3.0]]) == (2.5, 3.5)


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


def test_artifact_edge_lists_and_mobile_genotypes_are_not_drawn_as_tables(tmp_path):
    from binas.genotype.mobilenet import MobileGenotype
    from binas.plots.run import _artifact_tables, matrices

    (tmp_path / "pruning.json").write_text(json.dumps({"primitives": list(PRIMITIVES), "edges": [[0, 2]] * EDGES}))
    assert _artifact_tables(tmp_path / "pruning.json")[0] == {}
    (tmp_path / "indicators.json").write_text(json.dumps({"primitives": list(PRIMITIVES), "z": table(0)}))
    assert list(_artifact_tables(tmp_path / "indicators.json")[0]) == ["z"]
    assert matrices({"genotype": {"space": "mobilenet", "blocks": [[3, 3], [5, 6]]}, "theta": table(0)}) == {
        "theta": table(0)
    }
    run = tmp_path / "mobile"
    run.mkdir()
    with MetricLogger(run / "metrics.jsonl") as log:
        log.log(epoch=0, train_loss=2.0, val_acc=10.0, theta=[[0.5, 0.5], [0.25, 0.75]])
    MobileGenotype(((3, 3), (5, 6))).save(run / "genotype.json")
    names = sorted(p.name for p in draw_run_plots(run))
    assert names == ["search_curves.png", "search_theta_epochs.png"]  # no cell diagrams for blocks
