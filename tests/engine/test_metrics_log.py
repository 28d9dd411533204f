"""metrics.jsonl: one valid JSON object per flushed line, NaN-safe, truncated on resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from binas.engine.metrics_log import MetricLogger, read_metrics, truncate_after
from binas.errors import BinasError


def test_lines_are_flushed_and_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    logger = MetricLogger(path)
    logger.log({"epoch": 0, "split": "train"}, loss=0.5)
    # readable before close: a killed run keeps what it logged
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"epoch": 0, "split": "train", "loss": 0.5}]
    logger.log(epoch=1, loss=torch.tensor(0.25), acc=np.float32(0.75), sizes=(1, 2), arr=np.arange(2))
    logger.close()
    assert read_metrics(path) == [
        {"epoch": 0, "split": "train", "loss": 0.5},
        {"epoch": 1, "loss": 0.25, "acc": 0.75, "sizes": [1, 2], "arr": [0, 1]},
    ]


def test_appends_across_loggers(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with MetricLogger(path) as logger:
        logger.log(epoch=0)
    with MetricLogger(path) as logger:
        logger.log(epoch=1)
    assert [r["epoch"] for r in read_metrics(path)] == [0, 1]


def test_non_finite_values_stay_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with MetricLogger(path) as logger:
        logger.log(
            epoch=0,
            loss=math.nan,
            grad=math.inf,
            low=-math.inf,
            t=torch.tensor(float("nan")),
            nested={"x": [1.0, math.nan]},
        )
    line = path.read_text().strip()
    raw = json.loads(line, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert raw["loss"] == "nan" and raw["grad"] == "inf" and raw["low"] == "-inf"
    (record,) = read_metrics(path)
    assert math.isnan(record["loss"]) and record["grad"] == math.inf and record["low"] == -math.inf
    assert math.isnan(record["t"]) and math.isnan(record["nested"]["x"][1])


def test_disabled_logger_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with MetricLogger(path, enabled=False) as logger:
        logger.log(epoch=0, loss=1.0)
    assert not path.exists()


def test_unserializable_value_is_a_bug(tmp_path: Path) -> None:
    with MetricLogger(tmp_path / "m.jsonl") as logger, pytest.raises(TypeError):
        logger.log(epoch=0, model=object())


def test_read_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_metrics(tmp_path / "none.jsonl") == []


def test_incomplete_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 0}\n{"epoch": 1}\n{"epoch": 2, "lo')
    assert read_metrics(path) == [{"epoch": 0}, {"epoch": 1}]


def test_damaged_middle_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 0}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(BinasError, match=r"metrics.jsonl:2: not a valid metrics line") as info:
        read_metrics(path)
    assert "\n" not in str(info.value)


def write_run(path: Path, epochs: int) -> None:
    with MetricLogger(path) as logger:
        logger.log(event="start")
        for epoch in range(epochs):
            logger.log(epoch=epoch, step=0, loss=1.0 / (epoch + 1))
            logger.log(epoch=epoch, split="val", acc=0.1 * epoch)


def test_truncate_after_drops_rerun_epochs(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_run(path, epochs=4)  # a run that got through epoch 3, but the checkpoint is from epoch 1
    with path.open("a") as handle:
        handle.write('{"event": "killed", "epo')  # and died mid-line
    assert truncate_after(path, 1) == 4
    records = read_metrics(path)
    assert records[0] == {"event": "start"} and [r["epoch"] for r in records[1:]] == [0, 0, 1, 1]
    with MetricLogger(path) as logger:  # the resumed run appends epoch 2 again: no duplicates
        logger.log(epoch=2, step=0, loss=0.3)
    assert [r.get("epoch") for r in read_metrics(path)] == [None, 0, 0, 1, 1, 2]


def test_truncate_after_keeps_everything_up_to_epoch(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_run(path, epochs=2)
    before = path.read_text()
    assert truncate_after(path, 5) == 0
    assert read_metrics(path) == [json.loads(line) for line in before.splitlines()]
    assert truncate_after(tmp_path / "missing.jsonl", 0) == 0


def test_truncate_after_preserves_non_finite_values(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with MetricLogger(path) as logger:
        logger.log(epoch=0, loss=math.nan)
        logger.log(epoch=1, loss=1.0)
    truncate_after(path, 0)
    (record,) = read_metrics(path)
    assert math.isnan(record["loss"])
