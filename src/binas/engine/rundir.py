"""Run directories: a fresh one per run, and reading back what a finished run saved.

Every run gets its own directory (``runs/<YYYYmmdd-HHMMSS>-<method>-<6 hex>``) that is created with
``exist_ok=False``, so two runs never write into each other's files. The files in it are named in
`binas.run_files` and written atomically (`binas.storage.files`).

Under torchrun only rank 0 should create the directory; share the path with
``runtime.broadcast_object``.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from pathlib import Path

from binas.config.io import from_dict, load_yaml
from binas.config.schema import RunConfig
from binas.errors import BinasError
from binas.run_files import CONFIG_FILE

logger = logging.getLogger(__name__)

_NAME_TRIES = 100  # attempts at a fresh random suffix before giving up (a clash is ~1 in 16M per try)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def make_run_dir(root: str | Path = "runs", method: str = "run", *, out: str | Path | None = None) -> Path:
    """Create and return the directory of a new run.

    Args:
        root: parent of the generated run directories.
        method: short method name put in the directory name (``dcpnas``, ``darts`` ...).
        out: an explicit directory chosen by the user; it is used as is (created if missing, reused
            if it exists, e.g. to resume). ``root`` and ``method`` are then ignored.

    Raises:
        BinasError: ``out`` (or a generated path) exists but is not a directory, or cannot be created.
    """
    if out is not None:
        return _mkdir(Path(out), exist_ok=True)
    root = Path(root)
    slug = _UNSAFE.sub("-", method).strip("-.") or "run"
    _mkdir(root, exist_ok=True)
    for _ in range(_NAME_TRIES):
        path = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise BinasError(f"cannot create run directory {path}: {exc.strerror or exc}") from None
        logger.info("run directory: %s", path)
        return path
    raise BinasError(f"could not find an unused run directory name under {root}")


def _mkdir(path: Path, *, exist_ok: bool) -> Path:
    if path.exists() and not path.is_dir():
        raise BinasError(f"{path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
    except OSError as exc:
        raise BinasError(f"cannot create directory {path}: {exc.strerror or exc}") from None
    return path


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The resolved config a run saved in its directory (`config.yaml`)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise BinasError(f"run directory not found: {path}")
    return from_dict(RunConfig, load_yaml(path / CONFIG_FILE))
