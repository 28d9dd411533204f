"""Where a run's messages go: the console level, `RUN_DIR/log.txt`, and TensorBoard scalars.

The console handler belongs to the CLI (`binas.cli.main`); a run adds a file handler on the `binas`
logger for as long as it runs (:func:`run_log`), so `log.txt` holds every message of that run at
DEBUG level whatever the console shows. TensorBoard is optional: :func:`tensorboard_factory` is a
`binas.engine.metrics_log` sink factory that mirrors each `metrics.jsonl` record as scalars when the
`tensorboard` package is installed and does nothing otherwise.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LOG_NAME = "log.txt"
TB_DIR_NAME = "tb"
#: The logger every binas module logs under (`logging.getLogger(__name__)` in `binas.*`).
PACKAGE_LOGGER = "binas"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"
#: Record keys that are the x axis, not a curve, in order of preference (`global_epoch` counts the epochs
#: of all phases of a two-step retraining).
STEP_KEYS = ("global_epoch", "epoch", "step")


def console_level(*, quiet: bool = False, verbose: bool = False) -> int:
    """The console level for `--quiet` (warnings only), `--verbose` (debug) or neither (info)."""
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose else logging.INFO


def configure_console(level: int) -> logging.Handler:
    """Console logging for the CLI: a stderr handler at `level` on the root logger, while the `binas`
    logger itself passes everything down to DEBUG so `log.txt` files get the full story. Calling it
    again (e.g. `main()` run twice in one process) replaces the handler it installed before."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_binas_console", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    handler._binas_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)  # other libraries keep the root's WARNING level
    logging.getLogger(PACKAGE_LOGGER).setLevel(logging.DEBUG)
    return handler


def attach_run_log(run_dir: str | Path, *, level: int = logging.INFO) -> logging.Handler:
    """Append the `binas` logger's messages at `level` and above to `run_dir/log.txt`.

    The console keeps its own level: handlers on the root logger without a level of their own (as
    `logging.basicConfig` makes them) are pinned to the level that was in force, so a quiet console
    stays quiet while the file gets INFO. Undo with :func:`detach_run_log`.
    """
    path = Path(run_dir) / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    package = logging.getLogger(PACKAGE_LOGGER)
    effective = package.getEffectiveLevel()
    pinned = []
    if effective > level:
        for console in logging.getLogger().handlers:
            if console.level == logging.NOTSET:
                console.setLevel(effective)
                pinned.append(console)
    handler._binas_restore = (package.level, pinned)  # type: ignore[attr-defined]
    package.setLevel(min(effective, level))
    package.addHandler(handler)
    return handler


def detach_run_log(handler: logging.Handler) -> None:
    """Remove and close a handler from :func:`attach_run_log` and undo its level changes."""
    package = logging.getLogger(PACKAGE_LOGGER)
    package.removeHandler(handler)
    handler.close()
    previous, pinned = getattr(handler, "_binas_restore", (package.level, []))
    package.setLevel(previous)
    for console in pinned:
        console.setLevel(logging.NOTSET)


@contextlib.contextmanager
def run_log(run_dir: str | Path, *, level: int = logging.INFO) -> Iterator[Path]:
    """`with run_log(run_dir):` every binas message of the block also goes to `run_dir/log.txt`."""
    handler = attach_run_log(run_dir, level=level)
    try:
        yield Path(run_dir) / LOG_NAME
    finally:
        detach_run_log(handler)


def tensorboard_available() -> bool:
    """True when the optional `tensorboard` package is importable (`pip install binas[tensorboard]`)."""
    return importlib.util.find_spec("tensorboard") is not None


def scalars(record: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The plottable numbers of a metrics record: numbers (not bools), nested mappings as `a/b`."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(scalars(value, prefix=f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and name not in STEP_KEYS:
            out[name] = float(value)
    return out


class TensorBoardSink:
    """Mirror metrics records into a TensorBoard event file: each number becomes a scalar at the
    record's `epoch` (or `step`, else a running count). Needs the `tensorboard` package."""

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard; optional extra

        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir))
        self._count = 0

    def __call__(self, record: dict[str, Any]) -> None:
        step = next((record[k] for k in STEP_KEYS if isinstance(record.get(k), int)), self._count)
        for name, value in scalars(record).items():
            self._writer.add_scalar(name, value, global_step=step)
        self._writer.flush()
        self._count += 1

    def close(self) -> None:
        self._writer.close()


def tensorboard_factory(metrics_path: Path) -> TensorBoardSink | None:
    """Sink factory for `metric_sinks`: a `TensorBoardSink` writing to `tb/` beside the metrics file,
    or None (logged once at DEBUG) when tensorboard is not installed."""
    if not tensorboard_available():
        logger.debug("tensorboard is not installed; %s is not mirrored", metrics_path)
        return None
    return TensorBoardSink(Path(metrics_path).parent / TB_DIR_NAME)
