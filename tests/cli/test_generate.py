"""`binas generate` and `binas latency-table` on tiny DDPNAS run directories of both spaces."""

from __future__ import annotations

import dataclasses
import json

import pytest

from binas.cli.main import EXIT_USAGE, main
from binas.config.io import dump_yaml
from binas.engine.rundir import load_run_config
from binas.generation.mobile_costs import mobile_costs
from binas.genotype import Genotype
from binas.genotype.mobilenet import MobileGenotype
from binas.quant.policy import BinarizationPolicy
from binas.space.mobilenet import MobileNetConfig
from binas.workflows import search as api
from tests.conftest import tiny_run_config

TINY_MOBILE = MobileNetConfig(width_mult=0.25, depth=1)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def darts_run(tmp_path_factory):
    """A 1-bit DDPNAS search on the tiny DARTS space, stopped after its first pruning cycle."""
    cfg = tiny_run_config("ddpnas", binary=True, rounds_per_prune=1, epochs=8)
    path = tmp_path_factory.mktemp("darts")
    api.search(cfg, path, progress=False)
    return path


@pytest.fixture(scope="module")
def mobile_run(tmp_path_factory):
    """A real DDPNAS search on the tiny mobile space, stopped after its first pruning cycle."""
    cfg = tiny_run_config("ddpnas", rounds_per_prune=1, epochs=7)
    cfg = dataclasses.replace(cfg, space=dataclasses.replace(cfg.space, kind="mobilenet", mobilenet=TINY_MOBILE))
    path = tmp_path_factory.mktemp("mobile")
    api.search(cfg, path, progress=False)
    return path


def _flops_range() -> tuple[float, float]:
    costs = mobile_costs(TINY_MOBILE, num_classes=10, in_channels=3, image_size=8, policy=BinarizationPolicy.real())
    blocks = costs.blocks["flops"]
    return costs.fixed["flops"] + blocks.min(axis=1).sum(), costs.fixed["flops"] + blocks.max(axis=1).sum()


def test_mobile_three_flops_budgets(mobile_run, capsys):
    lo, hi = _flops_range()
    budgets = [lo * 1.02, (lo + hi) / 2, hi * 1.1]
    code, out, err = run_cli(
        capsys, "generate", str(mobile_run), "--flops", *[f"{b / 1e3:.3f}K" for b in budgets], "--quiet"
    )
    assert code == 0, err
    networks = json.loads((mobile_run / "generated.json").read_text())["networks"]
    assert len(networks) == 3 and "| network |" in out
    for net, budget in zip(networks, budgets):
        assert net["measured"]["flops"] == net["predicted"] <= budget * 1.0001
        assert MobileGenotype.load(net["path"]).to_dict() == net["genotype"]
    assert networks[0]["measured"]["flops"] <= networks[1]["measured"]["flops"] <= networks[2]["measured"]["flops"]
    assert networks[0]["score"] <= networks[2]["score"]
    assert (mobile_run / "generated.md").read_text().count("\n") == 5


def test_mobile_latency_budget_uses_the_measured_table(mobile_run, tmp_path, capsys):
    table = tmp_path / "lut.json"
    code, out, _ = run_cli(capsys, "latency-table", str(mobile_run), "--out", str(table), "--repeats", "1", "--quiet")
    assert code == 0 and "entries" in out and table.is_file()
    entries = json.loads(table.read_text())["entries"]
    code, _, err = run_cli(
        capsys,
        "generate",
        str(mobile_run),
        "--latency-ms",
        "1000",
        "--params",
        "10M",
        "--latency-table",
        str(table),
        "--quiet",
    )
    assert code == 0, err
    assert json.loads(table.read_text())["entries"] == entries  # reused, not re-measured
    labels = [n["label"] for n in json.loads((mobile_run / "generated.json").read_text())["networks"]]
    assert labels == ["params-10M", "latency-1000ms"]


def test_darts_cells_per_non_param_count_and_per_budget(darts_run, capsys):
    code, _, err = run_cli(capsys, "generate", str(darts_run), "--non-param", "2", "4", "--height", "2", "--quiet")
    assert code == 0, err
    networks = json.loads((darts_run / "generated.json").read_text())["networks"]
    assert [n["constraints"]["non_param"] for n in networks] == [2, 4]
    assert all(Genotype.load(n["path"]) for n in networks)
    code, _, err = run_cli(capsys, "generate", str(darts_run), "--params", "1M", "2M", "3M", "--quiet")
    assert code == 0, err
    networks = json.loads((darts_run / "generated.json").read_text())["networks"]
    assert [n["label"] for n in networks] == ["params-1M", "params-2M", "params-3M"]
    assert all(n["measured"]["params"] <= 1e6 and n["measured"]["ops"] > 0 for n in networks)


def test_generation_falls_back_to_the_checkpoint(darts_run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(darts_run, copy)
    (copy / "theta.json").unlink()
    code, _, err = run_cli(capsys, "generate", str(copy), "--non-param", "3", "--quiet")
    assert code == 0, err


@pytest.mark.parametrize(
    "space, argv, message",
    [
        ("mobile", ["--flops", "1K"], "no network fits the budget"),
        ("mobile", [], "needs a budget"),
        ("mobile", ["--flops", "1G", "--height", "2"], "--height applies to the DARTS space"),
        ("mobile", ["--flops", "lots"], "cannot read budget 'lots'"),
        ("darts", ["--params", "10", "--non-param", "2"], "no DARTS cell"),
        ("darts", ["--non-param", "9"], "0..8"),
        ("darts", ["--latency-table", "x.json"], "--latency-table applies to the mobilenet space"),
    ],
)
def test_bad_requests_are_one_line_and_exit_2(space, argv, message, darts_run, mobile_run, capsys):
    run = mobile_run if space == "mobile" else darts_run
    code, _, err = run_cli(capsys, "generate", str(run), *argv, "--quiet")
    lines = err.strip().splitlines()
    assert code == EXIT_USAGE and len(lines) == 1 and message in lines[0], err


def test_other_methods_and_missing_dirs_are_refused(darts_run, tmp_path, capsys):
    other = tmp_path / "darts-run"
    other.mkdir()
    cfg = load_run_config(darts_run)
    dump_yaml(
        dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, method="darts", options={})),
        other / "config.yaml",
    )
    for run, message in ((other, "is a 'darts' search"), (tmp_path / "nope", "not found")):
        code, _, err = run_cli(capsys, "generate", str(run), "--flops", "1M")
        assert code == EXIT_USAGE and message in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "latency-table", "--space", "darts")
    assert code == EXIT_USAGE and "mobilenet space" in err
