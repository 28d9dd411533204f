"""Latency: the timer, the measured lookup table (save, reuse, refusal elsewhere) and budgets."""

from __future__ import annotations

import json

import pytest
import torch

from binas.generation.budgets import Budget, GenerationError, format_amount, parse_amount
from binas.generation.latency import LatencyTable, device_description, measure_latency
from binas.generation.mobile_costs import latency_costs, measure_mobile_latency
from binas.quant.policy import BinarizationPolicy
from binas.space.mobilenet import MobileNetConfig

TINY = MobileNetConfig(width_mult=0.25, depth=1)
CPU = torch.device("cpu")


def test_measure_latency_is_positive_and_restores_the_mode():
    conv = torch.nn.Conv2d(3, 4, 3).train()
    assert measure_latency(conv, (1, 3, 8, 8), repeats=2, warmup=1) > 0
    assert conv.training


def test_table_covers_the_space_saves_and_is_reused(tmp_path, monkeypatch):
    kw = dict(num_classes=10, in_channels=3, image_size=8, policy=BinarizationPolicy.real())
    table = measure_mobile_latency(TINY, device=CPU, repeats=1, **kw)
    fixed, blocks = latency_costs(TINY, table, **kw)
    assert fixed > 0 and blocks.shape == (6, 7) and (blocks[:, :6] > 0).all()
    path = table.save(tmp_path / "lut.json")
    loaded = LatencyTable.load(path)
    assert loaded.entries == table.entries and loaded.device == device_description(CPU)
    monkeypatch.setattr("binas.generation.mobile_costs.measure_latency", lambda *a, **k: pytest.fail("re-measured"))
    assert measure_mobile_latency(TINY, device=CPU, table=loaded, **kw).entries == table.entries


def test_tables_from_elsewhere_or_malformed_are_refused(tmp_path):
    table = LatencyTable("cuda: Some GPU", torch.get_num_threads(), 1, entries={"a": 1.0})
    with pytest.raises(GenerationError, match="re-measure"):
        table.check_matches(CPU, 1)
    with pytest.raises(GenerationError, match="no entry"):
        table.lookup("b")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(GenerationError, match="not a binas latency table"):
        LatencyTable.load(bad)
    with pytest.raises(GenerationError, match="not found"):
        LatencyTable.load(tmp_path / "missing.json")


def test_budget_amounts():
    assert parse_amount("300M") == 3e8 and parse_amount("3.5M") == 3.5e6 and parse_amount("12") == 12.0
    assert parse_amount("1.5k") == 1500.0 and format_amount(3.1e8) == "310M" and format_amount(12.5) == "12.5"
    assert Budget("flops", 3e8).label == "flops-300M" and Budget("latency_ms", 12).label == "latency-12ms"
    for bad in ("abc", "-5M", "0", "3T"):
        with pytest.raises(GenerationError):
            parse_amount(bad)
