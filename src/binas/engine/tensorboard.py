"""TensorBoard mirror of `metrics.jsonl` (optional extra `binas[tensorboard]`).

:func:`tensorboard_factory` is a :func:`binas.engine.metrics_log.metric_sinks` factory: it mirrors each
record of a metrics file as scalars in `tb/` beside it when the `tensorboard` package is installed, and
does nothing otherwise. The CLI installs it once around every command.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from binas.engine.metrics_log import STEP_KEYS, scalars
from binas.run_files import TENSORBOARD_DIR

logger = logging.getLogger(__name__)


def tensorboard_available() -> bool:
    """True when the optional `tensorboard` package is importable (`pip install binas[tensorboard]`)."""
    return importlib.util.find_spec("tensorboard") is not None


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
    return TensorBoardSink(Path(metrics_path).parent / TENSORBOARD_DIR)
