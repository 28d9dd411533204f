"""``metrics.jsonl``: one JSON object per line, appended and flushed as it happens.

JSON Lines because a run killed at any moment keeps every line it flushed, and the file can be read
with nothing but ``json``. Non-finite numbers are written as the strings ``"nan"``, ``"inf"``,
``"-inf"`` (plain JSON has no NaN) and :func:`read_metrics` turns them back into floats.

Only rank 0 writes: build the logger with ``enabled=runtime.is_main``. On ``--resume`` the epoch being
re-run may already have logged lines; :func:`truncate_after` drops them first so no epoch appears twice.

Sinks mirror every record elsewhere (e.g. TensorBoard, ``binas.engine.tensorboard.TensorBoardSink``): pass
``sinks=[...]`` or, for loggers built deep inside the engine, install sink *factories* for a block of
code with :func:`metric_sinks`; each new logger then asks every factory for a sink for its path.
A failing sink is dropped with a warning: the JSONL file is the record, sinks are a convenience.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from binas.errors import BinasError
from binas.storage.files import atomic_open, to_jsonable

logger = logging.getLogger(__name__)

#: Record keys that are the x axis, not a curve, in order of preference (`global_epoch` counts the epochs
#: of all phases of a two-step retraining).
STEP_KEYS = ("global_epoch", "epoch", "step")

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class RecordLog(Protocol):
    """Where an epoch driver sends its records: a `MetricLogger`, or an adapter in front of one."""

    def log(self, record: Mapping[str, Any]) -> None: ...


#: A sink receives each record as written (JSON-safe data); it may also have a ``close()`` method.
Sink = Callable[[dict[str, Any]], None]
#: A sink factory gets the metrics file's path and returns a sink for it, or None (nothing to mirror).
SinkFactory = Callable[[Path], "Sink | None"]
_SINK_FACTORIES: contextvars.ContextVar[tuple[SinkFactory, ...]] = contextvars.ContextVar(
    "binas_metric_sink_factories", default=()
)


@contextlib.contextmanager
def metric_sinks(*factories: SinkFactory) -> Iterator[None]:
    """Within this block, every new :class:`MetricLogger` built without ``sinks=`` gets a sink from each
    factory (e.g. a TensorBoard writer next to its file). Scoped (a context variable), not global."""
    current = _SINK_FACTORIES.get()
    token = _SINK_FACTORIES.set(current + tuple(f for f in factories if f not in current))  # no double mirror
    try:
        yield
    finally:
        _SINK_FACTORIES.reset(token)


class MetricLogger:
    """Append metric records to a JSONL file, flushing after every line.

    Use as a context manager or call :meth:`close`. The file is opened lazily on the first record, so a
    disabled logger (``enabled=False``, any rank but 0) never creates it.
    """

    def __init__(self, path: str | Path, *, enabled: bool = True, sinks: Sequence[Sink] | None = None) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._handle: IO[str] | None = None
        self._factories = _SINK_FACTORIES.get() if sinks is None else ()
        self._sinks: list[Sink] | None = list(sinks) if sinks is not None else None

    def log(self, record: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Write one line: ``record`` merged with ``fields``, e.g. ``log(epoch=3, train_loss=0.4)``.

        Values may be numbers, strings, lists/dicts, 0-d tensors or numpy scalars (see ``to_jsonable``).
        """
        if not self.enabled:
            return
        merged = {**(record or {}), **fields}
        line = json.dumps(to_jsonable(merged), allow_nan=False, separators=(",", ":"))
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(line + "\n")
        self._handle.flush()  # a killed run keeps this line; no fsync: process death, not power loss
        self._mirror(json.loads(line))

    def _mirror(self, record: dict[str, Any]) -> None:
        if self._sinks is None:  # built on the first record, so disabled loggers never create sinks
            self._sinks = []
            for factory in self._factories:
                try:
                    sink = factory(self.path)
                except Exception as exc:  # noqa: BLE001 - a sink must never stop a run
                    logger.warning("metrics sink %r not created: %s", factory, exc)
                    continue
                if sink is not None:
                    self._sinks.append(sink)
        for sink in list(self._sinks):
            try:
                sink(record)
            except Exception as exc:  # noqa: BLE001 - the JSONL line is written; drop the broken sink
                logger.warning("metrics sink %r failed and is dropped: %s", sink, exc)
                self._sinks.remove(sink)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        for sink in self._sinks or []:
            close = getattr(sink, "close", None)
            if callable(close):
                close()
        if self._factories:  # a later record (the logger reopens its file) builds fresh sinks
            self._sinks = None

    def __enter__(self) -> MetricLogger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def _parse_lines(path: Path) -> list[dict[str, Any]]:
    """Parse every line; a damaged *last* line (the run died mid-write) is dropped with a warning."""
    lines = path.read_text(encoding="utf-8").splitlines()
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if number == len(lines):
                logger.warning("%s:%d: ignoring an incomplete last line", path, number)
                break
            raise BinasError(f"{path}:{number}: not a valid metrics line ({exc})") from None
        records.append(record)
    return records


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics file, in order (``[]`` if the file does not exist yet).

    Raises:
        BinasError: a line other than the last is not a JSON object.
    """
    path = Path(path)
    if not path.exists():
        return []
    return [_decode(record) for record in _parse_lines(path)]


def truncate_after(path: str | Path, epoch: int, *, key: str = "epoch") -> int:
    """Drop the first record whose ``key`` is greater than ``epoch``, and every record after it.

    Called on resume from the checkpoint taken after ``epoch`` (rank 0 only): everything logged later
    belongs to the epochs about to be re-run. Records without ``key`` before that point are kept. The
    file is rewritten atomically, so call this before a :class:`MetricLogger` opens it. Returns the
    number of records dropped.
    """
    path = Path(path)
    if not path.exists():
        return 0
    records = _parse_lines(path)
    cut = next(
        (i for i, r in enumerate(records) if isinstance(r.get(key), (int, float)) and r[key] > epoch),
        len(records),
    )
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for record in records[:cut]:
            handle.write(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n")
    dropped = len(records) - cut
    if dropped:
        logger.info("%s: dropped %d metric record(s) logged after epoch %d", path, dropped, epoch)
    return dropped


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
