"""Run logs: `log.txt`, console levels, metric sinks on `MetricLogger`, and the TensorBoard mirror."""

from __future__ import annotations

import logging
import sys
import types

from binas import logs
from binas.engine.metrics_log import MetricLogger, metric_sinks, read_metrics


def test_run_log_writes_info_to_the_file_while_the_console_stays_quiet(tmp_path, caplog):
    console = logging.StreamHandler()
    root, package = logging.getLogger(), logging.getLogger(logs.PACKAGE_LOGGER)
    root.addHandler(console)
    before = package.level
    package.setLevel(logging.WARNING)
    try:
        with logs.run_log(tmp_path) as path:
            logging.getLogger("binas.something").info("hello file")
            assert console.level == logging.WARNING  # pinned: the console does not start showing INFO
        assert "INFO binas.something: hello file" in path.read_text()
        assert console.level == logging.NOTSET and package.level == logging.WARNING
    finally:
        root.removeHandler(console)
        package.setLevel(before)


def test_console_levels():
    assert logs.console_level(quiet=True) == logging.WARNING
    assert logs.console_level(verbose=True) == logging.DEBUG
    assert logs.console_level() == logging.INFO


def test_scalars_flatten_numbers_only():
    record = {"epoch": 3, "loss": 0.5, "ok": True, "name": "x", "d": {"a": 1}, "table": [[1.0]]}
    assert logs.scalars(record) == {"loss": 0.5, "d/a": 1.0}


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


class FakeWriter:
    """Stands in for torch.utils.tensorboard.SummaryWriter (tensorboard is an optional extra)."""

    instances: list[FakeWriter] = []

    def __init__(self, log_dir: str) -> None:
        self.log_dir, self.scalars, self.closed = log_dir, [], False
        FakeWriter.instances.append(self)

    def add_scalar(self, name, value, global_step):
        self.scalars.append((name, value, global_step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_tensorboard_sink_mirrors_scalars(tmp_path, monkeypatch):
    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    monkeypatch.setattr(logs, "tensorboard_available", lambda: True)
    FakeWriter.instances.clear()
    with metric_sinks(logs.tensorboard_factory):
        with MetricLogger(tmp_path / "search" / "metrics.jsonl") as log:
            log.log(epoch=4, train_loss=0.25, genotype={"normal": []})
    (writer,) = FakeWriter.instances
    assert writer.log_dir == str(tmp_path / "search" / logs.TB_DIR_NAME)
    assert writer.scalars == [("train_loss", 0.25, 4)] and writer.closed


def test_tensorboard_factory_is_a_no_op_without_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "tensorboard_available", lambda: False)
    assert logs.tensorboard_factory(tmp_path / "metrics.jsonl") is None


def test_configure_console_filters_by_handler_level_and_replaces_itself(tmp_path):
    root, package = logging.getLogger(), logging.getLogger(logs.PACKAGE_LOGGER)
    before = package.level
    try:
        first = logs.configure_console(logging.WARNING)
        second = logs.configure_console(logging.WARNING)
        assert first not in root.handlers and second in root.handlers and second.level == logging.WARNING
        assert package.level == logging.DEBUG
        with logs.run_log(tmp_path, level=logging.DEBUG) as path:
            logging.getLogger("binas.x").debug("detail")
        assert "DEBUG binas.x: detail" in path.read_text()
    finally:
        root.removeHandler(second)
        package.setLevel(before)
