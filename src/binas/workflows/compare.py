"""Run summaries side by side: read each run's summary JSON and format a markdown or CSV table.

`binas run` writes `RUN_DIR/summary.json` (flat keys, see `SUMMARY_KEYS`). For directories made by
`binas search` alone, `search_summary.json` (+ `config.yaml` for the data set) is read instead, so
every kind of run directory can be compared; a value a run does not have is shown as `-`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from binas.errors import BinasError
from binas.run_files import CONFIG_FILE, SEARCH_SUMMARY_FILE, SUMMARY_FILE

MISSING = "-"
MEGA = 1e6
#: The keys of `summary.json` (written by `binas.pipeline`), in table order.
SUMMARY_KEYS = (
    "run",
    "method",
    "dataset",
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


COLUMNS: tuple[Column, ...] = (
    Column("run", "run", str),
    Column("method", "method", str),
    Column("dataset", "dataset", str),
    Column("archid", "archid", str),
    Column("top1", "top-1 %", _fixed(2)),
    Column("top5", "top-5 %", _fixed(2)),
    Column("params", "params (M)", _fixed(3, MEGA)),
    Column("ops", "OPs (M)", _fixed(2, MEGA)),
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
    cells = [[MISSING if row.get(c.key) is None else c.show(row[c.key]) for c in columns] for row in rows]
    headers = [c.header for c in columns]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        writer.writerows(cells)
        return buffer.getvalue().rstrip("\n")
    if fmt != "markdown":
        raise BinasError(f"unknown table format '{fmt}'; choose markdown or csv")
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def compare_runs(run_dirs: Sequence[str | Path], fmt: TableFormat = "markdown") -> str:
    """The comparison table of `run_dirs`, in the order given."""
    if not run_dirs:
        raise BinasError("give at least one run directory")
    return format_table([load_summary(d) for d in run_dirs], fmt)
