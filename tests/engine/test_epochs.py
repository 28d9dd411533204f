"""`drive_epochs`: the epoch loop under searches and training phases."""

from __future__ import annotations

import logging

from binas.engine.epochs import Clock, EpochPlan, drive_epochs
from binas.engine.metrics_log import MetricLogger, read_metrics
from binas.engine.runtime import setup_runtime


def test_records_clock_checkpoints_and_a_line_per_epoch_without_a_bar(tmp_path, caplog):
    runtime = setup_runtime("cpu", 0, num_threads=1)
    saved: list[int] = []
    clock = Clock(seconds=5.0)  # resumed: earlier epochs' time is kept

    def run_epoch(epoch, loop):
        assert loop.epoch == epoch and loop.batch_size == 8
        return {"train_loss": 1.0 / (epoch + 1), "train_acc": 50.0}

    with caplog.at_level(logging.INFO, logger="binas"), MetricLogger(tmp_path / "m.jsonl") as log:
        done, last = drive_epochs(
            range(1, 4),
            run_epoch,
            runtime,
            EpochPlan("phase", ("k",), 8, progress=False),
            clock=clock,
            metrics_log=log,
            save=lambda e, r: saved.append(e),
        )
    assert done == 4 and last["epoch"] == 3 and saved == [1, 2, 3] and clock.seconds > 5.0
    assert [r["epoch"] for r in read_metrics(tmp_path / "m.jsonl")] == [1, 2, 3]
    lines = [r.getMessage() for r in caplog.records if r.name == "binas.engine.epochs"]
    assert len(lines) == 3 and lines[0].startswith("phase: epoch 2/4") and "train_loss 0.5" in lines[0]


def test_stop_ends_a_schedule_that_finished_by_itself():
    runtime = setup_runtime("cpu", 0, num_threads=1)
    ran: list[int] = []
    done, _ = drive_epochs(
        range(0, 10),
        lambda e, loop: ran.append(e) or {},
        runtime,
        EpochPlan("s", ("k",), 4, progress=False),
        clock=Clock(),
        stop=lambda: len(ran) >= 2,
    )
    assert ran == [0, 1] and done == 2
