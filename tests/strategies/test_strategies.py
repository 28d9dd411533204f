"""Every registered strategy: a tiny search runs, returns a valid genotype, and resume is exact."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from binas.engine.metrics_log import read_metrics
from binas.engine.searcher import run_search
from binas.errors import ConfigError
from binas.genotype import Genotype
from binas.storage.checkpoint import load_checkpoint
from binas.strategies import STRATEGIES, resolve_method_options
from binas.workflows import search as api
from tests.conftest import tiny_run_config as _tiny
from tests.strategies.conftest import TINY_OPTIONS

METHODS = STRATEGIES.names()


def tiny_run_config(method: str, **kw):
    """The suite's tiny config with the method's smoke-test options (`TINY_OPTIONS`)."""
    return _tiny(method, **{**TINY_OPTIONS.get(method, {}), **kw})


@pytest.mark.slow
@pytest.mark.parametrize("binary", [False, True], ids=["real", "binary"])
@pytest.mark.parametrize("method", METHODS)
def test_tiny_search_writes_a_valid_run(method, binary, tmp_path):
    result = api.search(tiny_run_config(method, binary=binary), tmp_path, progress=False)
    assert isinstance(result.genotype, Genotype)
    assert Genotype.load(tmp_path / "genotype.json") == result.genotype
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in records] == list(range(result.epochs))
    assert all(Genotype.from_dict(r["genotype"]) for r in records)
    payload = load_checkpoint(tmp_path / "checkpoint.pt", kind="search")
    assert payload["method"] == method and payload["epoch"] == result.epochs - 1
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "normal.png").is_file()
    summary = json.loads((tmp_path / "search_summary.json").read_text())
    assert summary["genotype"] == result.genotype.to_dict()


def _interrupt_after(monkeypatch, epochs: int) -> None:
    """Make the strategy raise KeyboardInterrupt in the middle of epoch `epochs` (as Ctrl-C would)."""
    from binas.engine.strategy import SearchStrategy

    for cls in STRATEGIES._items.values():
        original = cls.run_epoch

        def run_epoch(self, epoch, loop, _original=original):
            if epoch == epochs:
                raise KeyboardInterrupt
            return _original(self, epoch, loop)

        monkeypatch.setattr(cls, "run_epoch", run_epoch)
    assert SearchStrategy


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_interrupted_then_resumed_matches_uninterrupted(method, tmp_path, monkeypatch):
    cfg = tiny_run_config(method, epochs=3)
    full = api.search(cfg, tmp_path / "full", progress=False)
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            api.search(cfg, tmp_path / "cut", progress=False)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 1
    resumed = api.search(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed.genotype == full.genotype
    epochs = [r["epoch"] for r in read_metrics(tmp_path / "cut" / "metrics.jsonl")]
    assert epochs == [r["epoch"] for r in read_metrics(tmp_path / "full" / "metrics.jsonl")]
    assert epochs[:3] == [0, 1, 2]
    full_alpha = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["strategy"]
    cut_alpha = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["strategy"]
    for key in ("arch", "supernet"):
        if key in full_alpha:
            for name, tensor in full_alpha[key].items():
                assert torch.equal(tensor, cut_alpha[key][name]), name


def test_darts_alpha_moves_and_pc_darts_warmup_freezes_it(tmp_path):
    from binas.engine.runtime import setup_runtime
    from binas.workflows.search import build_strategy

    cfg = tiny_run_config("darts", epochs=1)
    runtime = setup_runtime("cpu", 0, num_threads=1)
    darts = build_strategy(cfg, runtime)
    before = darts.arch.alpha_normal.detach().clone()
    run_search(darts, tmp_path / "d", progress=False)
    assert not torch.equal(before, darts.arch.alpha_normal.detach())

    pc = build_strategy(tiny_run_config("pc-darts", epochs=1, arch_warmup_epochs=1, partial_channels=2), runtime)
    before = pc.arch.alpha_normal.detach().clone()
    run_search(pc, tmp_path / "p", progress=False)
    assert torch.equal(before, pc.arch.alpha_normal.detach())
    assert pc.arch.edge_normalization


def test_unknown_option_is_a_config_error():
    from binas.errors import ConfigError

    with pytest.raises(ConfigError, match="search.options"):
        resolve_method_options(tiny_run_config("darts", partial_channels=2))


@pytest.mark.parametrize(
    ("method", "key", "value"),
    [("cp-nas", "epochs", 5), ("bnas", "epochs", 5), ("dcp-nas", "binary", True), ("cp-nas", "binary", False)],
)
def test_a_shared_key_the_method_does_not_use_is_an_error(method, key, value):
    cfg = tiny_run_config(method)
    cfg = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, **{key: value}))
    with pytest.raises(ConfigError, match=f"search.{key} does not apply"):
        resolve_method_options(cfg)


def test_options_are_typed_once():
    cfg = resolve_method_options(tiny_run_config("pc-darts", partial_channels=2))
    assert type(cfg.search.options).__name__ == "PCDartsOptions" and cfg.search.options.partial_channels == 2
    assert resolve_method_options(cfg) is cfg
