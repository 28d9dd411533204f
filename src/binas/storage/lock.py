"""A lock on a run directory, so two processes never write the same run's files.

`run_lock(run_dir)` takes an exclusive, non-blocking `flock` on `RUN_DIR/.lock` for as long as a run
writes there; a second binas process on the same `--out` gets a one-line `RunLockedError` naming the pid
that holds it. The OS releases the lock when the holder exits, even by SIGKILL, so a killed run never
leaves a stale lock behind (the file stays, the lock does not). Where `fcntl` is missing (Windows) the
lock is a no-op.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from binas.errors import RunLockedError, StorageError

LOCK_FILE = ".lock"

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the lock of `run_dir` (created if missing) for the block; raise `RunLockedError` if taken."""
    run_dir = Path(run_dir)
    path = run_dir / LOCK_FILE
    if fcntl is None:
        yield path
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise StorageError(f"cannot lock {run_dir}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunLockedError(
                f"{run_dir} is in use by another binas process (pid {holder}); wait for it or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the flock
