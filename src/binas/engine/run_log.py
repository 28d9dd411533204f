"""`RUN_DIR/log.txt`: every message of a run, whatever the console shows.

A run adds a file handler on the `binas` logger for as long as it runs (:func:`run_log`), so `log.txt`
holds every message of that run at INFO level (or lower) while the console keeps its own level
(`binas.cli.console`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from binas.run_files import LOG_FILE

#: The logger every binas module logs under (`logging.getLogger(__name__)` in `binas.*`).
PACKAGE_LOGGER = "binas"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def attach_run_log(run_dir: str | Path, *, level: int = logging.INFO) -> logging.Handler:
    """Append the `binas` logger's messages at `level` and above to `run_dir/log.txt`.

    The console keeps its own level: handlers on the root logger without a level of their own (as
    `logging.basicConfig` makes them) are pinned to the level that was in force, so a quiet console
    stays quiet while the file gets INFO. Undo with :func:`detach_run_log`.
    """
    path = Path(run_dir) / LOG_FILE
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
        yield Path(run_dir) / LOG_FILE
    finally:
        detach_run_log(handler)
