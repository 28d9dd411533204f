"""Files written so that a crash never leaves half of one: atomic replace, fsync, plain JSON.

Files a later step relies on (checkpoints, summaries, rewritten metric logs) are written through
:func:`atomic_open`: a crash mid-write leaves the previous file, never half of a new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from binas.errors import StorageError

TEMP_SUFFIX = ".tmp"
TEMP_HEX_BYTES = 4
_TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{" + str(2 * TEMP_HEX_BYTES) + r"}\.tmp")


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success fsync it and ``os.replace`` it onto ``path``.

    The temporary file lives in the same directory, so the final rename is atomic on POSIX and Windows.
    If the body raises (or the process dies) the old ``path`` is untouched and the temp file is removed.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files; mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp_name = path.parent / f".{path.name}.{secrets.token_hex(TEMP_HEX_BYTES)}{TEMP_SUFFIX}"
    try:
        # os.open with 0o666 (not tempfile.mkstemp's 0o600) so the final file gets the usual umask mode.
        fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        cause = _os_error(exc)
        if cause is not None:  # a full disk or a lost permission: one line, the old file stays
            kept = " (the previous version is kept)" if path.exists() else ""
            raise StorageError(f"cannot write {path}: {cause.strerror or cause}{kept}") from None
        raise
    _fsync_dir(path.parent)


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind a failed write: itself, or the cause a library wrapped it in (torch.save raises
    RuntimeError around a failing file write)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if isinstance(seen, OSError):
            return seen
        if seen is None:
            return None
        seen = seen.__cause__ or seen.__context__
    return None


def remove_stale_temp_files(directory: str | Path) -> list[Path]:
    """Delete the temporary files `atomic_open` leaves when the process is killed mid-write (`.NAME.HEX.tmp`);
    call it before a run writes into `directory` (under the run lock, so no live writer owns them)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.iterdir() if _TEMP_NAME.fullmatch(p.name) and p.is_file()]
    for p in stale:
        with contextlib.suppress(OSError):
            p.unlink()
    return stale


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
