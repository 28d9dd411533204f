"""Run summaries side by side: read each run's summary JSON and format a markdown or CSV table.

`binas run` and `binas train` write `RUN_DIR/summary.json` (flat keys, see `SUMMARY_KEYS`). For
directories made by `binas search` alone, `search_summary.json` (+ `config.yaml` for the data set) is read
instead, so every kind of run directory can be compared; a value a run does not have is shown as `-`.
A directory without a summary (a run still going, killed or failed) is skipped with a warning.

Markdown rounds for reading (params as a count, OPs in millions to 3 significant digits); CSV keeps the
exact values under the summary keys, for spreadsheets.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from binas.errors import BinasError
from binas.run_files import CONFIG_FILE, SEARCH_SUMMARY_FILE, SUMMARY_FILE

logger = logging.getLogger(__name__)

MISSING = "-"
MEGA = 1e6
#: The keys of `summary.json` (written by `binas.workflows.run`), in table order.
SUMMARY_KEYS = (
    "run",
    "method",
    "dataset",
    "policy",
    "archid",
    "top1",
    "top5",
    "params",
    "ops",
    "memory_mbit",
    "search_seconds",
    "train_seconds",
)
TableFormat = Literal["markdown", "csv"]


@dataclass(frozen=True)
class Column:
    """One table column: the summary key, its header and how a present value is shown."""

    key: str
    header: str
    show: Callable[[Any], str]


def _fixed(digits: int, scale: float = 1.0) -> Callable[[Any], str]:
    return lambda v: f"{float(v) / scale:.{digits}f}"


def _significant(digits: int, scale: float = 1.0) -> Callable[[Any], str]:
    return lambda v: f"{float(v) / scale:.{digits}g}"


def _count(v: Any) -> str:
    return f"{int(v):,}"


def _precision(policy: Any) -> str:
    """`1-bit (strict)` / `real`: what the trained network is."""
    return "real" if policy == "real" else f"1-bit ({policy})"


COLUMNS: tuple[Column, ...] = (
    Column("run", "run", str),
    Column("method", "method", str),
    Column("dataset", "dataset", str),
    Column("policy", "network", _precision),
    Column("archid", "archid", str),
    Column("top1", "top-1 %", _fixed(2)),
    Column("top5", "top-5 %", _fixed(2)),
    Column("params", "params", _count),
    Column("ops", "OPs (M)", _significant(3, MEGA)),
    Column("memory_mbit", "Mbit", _fixed(3)),
    Column("search_seconds", "search s", _fixed(1)),
    Column("train_seconds", "train s", _fixed(1)),
)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BinasError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise BinasError(f"{path}: expected a JSON object")
    return data


def _dataset_of(run_dir: Path) -> str | None:
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return None
    from binas.config.io import load_yaml

    data = load_yaml(path).get("data", {})
    return data.get("name") if isinstance(data, dict) else None


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    """The summary of one run directory as flat keys (see `SUMMARY_KEYS`), `run` = the folder name.

    Raises:
        BinasError: the folder does not exist or holds no summary JSON.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BinasError(f"run directory not found: {run_dir}")
    if (run_dir / SUMMARY_FILE).exists():
        summary = _read_json(run_dir / SUMMARY_FILE)
    elif (run_dir / SEARCH_SUMMARY_FILE).exists():
        search = _read_json(run_dir / SEARCH_SUMMARY_FILE)
        summary = {
            "method": search.get("method"),
            "archid": search.get("archid"),
            "search_seconds": search.get("search_seconds"),
            "dataset": _dataset_of(run_dir),
        }
    else:
        raise BinasError(f"{run_dir}: no {SUMMARY_FILE} or {SEARCH_SUMMARY_FILE} (is it a finished run?)")
    return {"run": run_dir.name, **summary}


def format_table(
    rows: Sequence[Mapping[str, Any]], fmt: TableFormat = "markdown", columns: Sequence[Column] = COLUMNS
) -> str:
    """`rows` (summaries) as a markdown table or CSV text; a missing or null value is `-`."""
    if fmt == "csv":  # exact values: a spreadsheet does its own rounding
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        writer.writerows([["" if row.get(c.key) is None else row[c.key] for c in columns] for row in rows])
        return buffer.getvalue().rstrip("\n")
    cells = [[MISSING if row.get(c.key) is None else c.show(row[c.key]) for c in columns] for row in rows]
    headers = [c.header for c in columns]
    if fmt != "markdown":
        raise BinasError(f"unknown table format '{fmt}'; choose markdown or csv")
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def compare_runs(run_dirs: Sequence[str | Path], fmt: TableFormat = "markdown") -> str:
    """The comparison table of `run_dirs`, in the order given. A directory without a summary (a run still
    going, killed or failed) is skipped with a warning, so `binas compare runs/*` works on a mixed folder.

    Raises:
        BinasError: no run directory given, one does not exist, a summary is unreadable, or no directory
            holds a summary at all.
    """
    if not run_dirs:
        raise BinasError("give at least one run directory")
    rows = []
    for run_dir in map(Path, run_dirs):
        if run_dir.is_dir() and not any((run_dir / f).exists() for f in (SUMMARY_FILE, SEARCH_SUMMARY_FILE)):
            logger.warning("skipped %s: no %s (a run still going, killed or failed)", run_dir, SUMMARY_FILE)
            continue
        rows.append(load_summary(run_dir))
    if not rows:
        only = f"{run_dirs[0]}: no {SUMMARY_FILE} or {SEARCH_SUMMARY_FILE} (is it a finished run?)"
        raise BinasError(
            only if len(run_dirs) == 1 else f"none of the {len(run_dirs)} directories holds a finished run"
        )
    return format_table(rows, fmt)
