"""Run logs: `log.txt`, console levels, metric sinks on `MetricLogger`, and the TensorBoard mirror."""

from __future__ import annotations

import logging

import pytest

from binas.cli import console
from binas.engine import run_log as logfile
from binas.engine import tensorboard as tb
from binas.engine.metrics_log import MetricLogger, metric_sinks, read_metrics, scalars
from binas.run_files import TENSORBOARD_DIR


def test_run_log_writes_info_to_the_file_while_the_console_stays_quiet(tmp_path, caplog):
    console = logging.StreamHandler()
    root, package = logging.getLogger(), logging.getLogger(logfile.PACKAGE_LOGGER)
    root.addHandler(console)
    before = package.level
    package.setLevel(logging.WARNING)
    try:
        with logfile.run_log(tmp_path) as path:
            logging.getLogger("binas.something").info("hello file")
            assert console.level == logging.WARNING  # pinned: the console does not start showing INFO
        assert "INFO binas.something: hello file" in path.read_text()
        assert console.level == logging.NOTSET and package.level == logging.WARNING
    finally:
        root.removeHandler(console)
        package.setLevel(before)


def test_console_levels():
    assert console.console_level(quiet=True) == logging.WARNING
    assert console.console_level(verbose=True) == logging.DEBUG
    assert console.console_level() == logging.INFO


def test_scalars_flatten_numbers_only():
    record = {"epoch": 3, "loss": 0.5, "ok": True, "name": "x", "d": {"a": 1}, "table": [[1.0]]}
    assert scalars(record) == {"loss": 0.5, "d/a": 1.0}


def test_metric_logger_sinks_explicit_scoped_and_failing(tmp_path):
    seen: list[dict] = []

    def broken(record):
        raise RuntimeError("disk full")

    with MetricLogger(tmp_path / "a.jsonl", sinks=[seen.append, broken]) as log:
        log.log(epoch=0, loss=float("nan"))
        log.log(epoch=1, loss=1.0)
    assert seen == [{"epoch": 0, "loss": "nan"}, {"epoch": 1, "loss": 1.0}]  # JSON-safe, as in the file
    assert len(read_metrics(tmp_path / "a.jsonl")) == 2  # the broken sink never stopped the file

    made: list = []
    with metric_sinks(lambda path: made.append(path) or seen.append):
        with MetricLogger(tmp_path / "b.jsonl") as log:
            log.log(epoch=0)
        MetricLogger(tmp_path / "c.jsonl", enabled=False).log(epoch=0)  # disabled: no sink is built
    MetricLogger(tmp_path / "d.jsonl").log(epoch=0)  # outside the block: no factory
    assert made == [tmp_path / "b.jsonl"]


def read_event_scalars(event_file) -> dict[str, list[tuple[int, float]]]:
    """Every scalar event of one TensorBoard event file, per tag, as written (no purging of repeated steps)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(event_file), purge_orphaned_data=False)
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_sink_writes_readable_scalars(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    import torch.utils.tensorboard

    closed: list[str] = []

    class ClosingSpy(torch.utils.tensorboard.SummaryWriter):  # the real writer; only records close()
        def close(self):
            closed.append(self.log_dir)
            super().close()

    monkeypatch.setattr(torch.utils.tensorboard, "SummaryWriter", ClosingSpy)
    metrics = tmp_path / "search" / "metrics.jsonl"
    with metric_sinks(tb.tensorboard_factory), metric_sinks(tb.tensorboard_factory):  # nested: still one sink
        with MetricLogger(metrics) as log:
            log.log(epoch=0, train_loss=0.5, genotype={"normal": []}, ok=True, name="x")
            log.log(epoch=1, train_loss=0.25, val={"acc": 75.0})
            log.log(global_epoch=7, epoch=2, train_loss=0.125)  # global_epoch is the x axis when present
    tb_dir = tmp_path / "search" / TENSORBOARD_DIR
    assert closed == [str(tb_dir)]
    event_files = sorted(tb_dir.iterdir())
    assert len(event_files) == 1, event_files  # one writer, one file
    assert event_files[0].name.startswith("events.out.tfevents.")
    assert read_event_scalars(event_files[0]) == {
        "train_loss": [(0, 0.5), (1, 0.25), (7, 0.125)],  # exact in float32
        "val/acc": [(1, 75.0)],
    }


def test_tensorboard_sink_counts_records_without_a_step(tmp_path):
    pytest.importorskip("tensorboard")
    with metric_sinks(tb.tensorboard_factory):
        with MetricLogger(tmp_path / "metrics.jsonl") as log:
            for loss in (4.0, 2.0, 1.0):
                log.log(loss=loss)
    event_files = sorted((tmp_path / TENSORBOARD_DIR).iterdir())
    assert len(event_files) == 1, event_files
    assert read_event_scalars(event_files[0]) == {"loss": [(0, 4.0), (1, 2.0), (2, 1.0)]}


def test_tensorboard_factory_is_a_no_op_without_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setattr(tb, "tensorboard_available", lambda: False)
    assert tb.tensorboard_factory(tmp_path / "metrics.jsonl") is None


def test_configure_console_filters_by_handler_level_and_replaces_itself(tmp_path):
    root, package = logging.getLogger(), logging.getLogger(logfile.PACKAGE_LOGGER)
    before = package.level
    try:
        first = console.configure_console(logging.WARNING)
        second = console.configure_console(logging.WARNING)
        assert first not in root.handlers and second in root.handlers and second.level == logging.WARNING
        assert package.level == logging.DEBUG
        with logfile.run_log(tmp_path, level=logging.DEBUG) as path:
            logging.getLogger("binas.x").debug("detail")
        assert "DEBUG binas.x: detail" in path.read_text()
    finally:
        root.removeHandler(second)
        package.setLevel(before)
