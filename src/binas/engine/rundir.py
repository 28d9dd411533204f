"""Run directories and the safe writing of the files in them.

Every run gets its own directory (``runs/<YYYYmmdd-HHMMSS>-<method>-<6 hex>``) that is created with
``exist_ok=False``, so two runs never write into each other's files. Files a later step relies on
(checkpoints, summaries, rewritten metric logs) are written atomically through :func:`atomic_open`:
a crash mid-write leaves the previous file, never half of a new one.

Under torchrun only rank 0 should create the directory; share the path with
``runtime.broadcast_object``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from binas.errors import BinasError

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


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success fsync it and ``os.replace`` it onto ``path``.

    The temporary file lives in the same directory, so the final rename is atomic on POSIX and Windows.
    If the body raises (or the process dies) the old ``path`` is untouched and the temp file is removed.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files; mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp_name = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    # os.open with 0o666 (not tempfile.mkstemp's 0o600) so the final file gets the usual umask mode.
    fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def to_jsonable(value: Any) -> Any:
    """Plain JSON data from metrics / summaries: always valid JSON (RFC 8259).

    Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` (JSON has no NaN and a NaN
    loss is worth recording); 0-d tensors and numpy scalars become numbers, arrays become lists,
    dataclasses dicts, paths strings, tuples lists.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # torch.Tensor, numpy arrays and numpy scalars
        return to_jsonable(value.tolist())
    raise TypeError(f"cannot write a {type(value).__name__} as JSON: {value!r}")


def write_json(path: str | Path, obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` (through :func:`to_jsonable`) as indented JSON, atomically."""
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False) + "\n"
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
