"""Redraw every plot a run directory's files allow into `RUN_DIR/plots/` (what `binas plot` does).

A `binas run` directory has `search/` and `train/` parts; a `binas search` or `binas train`
directory is one part itself. Per part: `<part>_curves.png` from `metrics.jsonl`; `<part>_mechanisms.png`
with the magnitudes that show each method mechanism acting (`binas.plots.mechanisms`);
`<part>_<key>_epochs.png` for every per-epoch E x M table in the metrics (e.g. softmax(alpha));
`<part>_<file>.png` for every JSON artifact holding such tables (DARTS's `alpha.json`); and the
`normal.png` / `reduce.png` cell diagrams of the part's `genotype.json`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from binas.engine.metrics_log import read_metrics
from binas.errors import BinasError
from binas.plots.curves import plot_curves
from binas.plots.heatmaps import is_matrix, plot_weights_final, plot_weights_over_epochs
from binas.plots.mechanisms import plot_mechanisms, without_mechanisms
from binas.run_files import (
    GENOTYPE_FILE,
    METRICS_FILE,
    PLOTS_DIR,
    SEARCH_SUMMARY_FILE,
    SUMMARY_FILE,
    TRAIN_SUMMARY_FILE,
)

logger = logging.getLogger(__name__)

PARTS = ("search", "train")
#: JSON files that are never weight tables (summaries, configs, the genotype itself).
NOT_ARTIFACTS = frozenset({GENOTYPE_FILE, SUMMARY_FILE, SEARCH_SUMMARY_FILE, TRAIN_SUMMARY_FILE})
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def run_parts(run_dir: Path) -> dict[str, Path]:
    """{"search": dir, "train": dir} for a `binas run` directory, else the directory as its own part."""
    parts = {name: run_dir / name for name in PARTS if (run_dir / name).is_dir()}
    if parts:
        return parts
    is_search = (run_dir / SEARCH_SUMMARY_FILE).exists() or (
        (run_dir / GENOTYPE_FILE).exists() and not (run_dir / SUMMARY_FILE).exists()
    )  # a train dir has both
    return {"search" if is_search else "train": run_dir}


#: Record keys holding table-shaped data that is not a weight table (a mobile genotype's (kernel, expand)
#: blocks; the DARTS genotype is a mapping of op names and never matches).
NOT_TABLE_KEYS = frozenset({"genotype"})


def matrices(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The E x M tables in one record (nested mappings give `a/b` keys)."""
    found: dict[str, Any] = {}
    for key, value in record.items():
        if not prefix and key in NOT_TABLE_KEYS:
            continue
        if isinstance(value, Mapping):
            found.update(matrices(value, prefix=f"{prefix}{key}/"))
        elif is_matrix(value):
            found[f"{prefix}{key}"] = value
    return found


#: Table-shaped entries of artifacts that are not op-weight tables (CP-NAS's edge list: (source, dest) pairs).
NOT_WEIGHT_TABLES = frozenset({"edges"})


def _shared_op_names(op_names: Any) -> list[str] | None:
    """Column names from per-row op names (DDPNAS's mobile space): a position whose names differ between
    rows shows them joined (`3x3_MBConv1|zero`)."""
    if not (isinstance(op_names, list) and op_names and all(isinstance(row, list) for row in op_names)):
        return None
    if len({len(row) for row in op_names}) != 1:
        return None
    return ["|".join(dict.fromkeys(str(row[j]) for row in op_names)) for j in range(len(op_names[0]))]


def _row_labels(path: Path, rows: int) -> list[str] | None:
    """Row names an artifact gives as strings (DDPNAS's mobile blocks), if one per table row."""
    try:
        labels = json.loads(path.read_text(encoding="utf-8")).get("edges")
    except (OSError, ValueError, AttributeError):
        return None
    ok = isinstance(labels, list) and len(labels) == rows and all(isinstance(x, str) for x in labels)
    return labels if ok else None


def _artifact_tables(path: Path) -> tuple[dict[str, Any], list[str] | None]:
    """The E x M op-weight tables of a JSON artifact, and its op names; a table whose width is not the
    number of ops (when the file names them) is something else and is left out."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, None
    if not isinstance(data, dict):
        return {}, None
    primitives = data.get("primitives")
    primitives = primitives if isinstance(primitives, list) else _shared_op_names(data.get("op_names"))
    tables = {
        key: table
        for key, table in matrices(data).items()
        if key.rsplit("/", 1)[-1] not in NOT_WEIGHT_TABLES and (primitives is None or len(table[0]) == len(primitives))
    }
    return tables, primitives


def _draw_part(name: str, part: Path, out: Path) -> list[Path]:
    drawn: list[Path] = []
    records = read_metrics(part / METRICS_FILE)
    if records:
        curve = plot_curves(
            [without_mechanisms(r) for r in records], out / f"{name}_curves.png", title=f"{name}: {part}"
        )
        mechanisms = plot_mechanisms(
            records, out / f"{name}_mechanisms.png", title=f"{name}: how much each method mechanism acts"
        )
        drawn += [p for p in (curve, mechanisms) if p]
        per_epoch: dict[str, tuple[list[float], list[Any]]] = {}
        for index, record in enumerate(records):
            x = float(record.get("epoch", index))
            for key, table in matrices(record).items():
                xs, tables = per_epoch.setdefault(key, ([], []))
                xs.append(x)
                tables.append(table)
        for key, (xs, tables) in per_epoch.items():
            if len({(len(t), len(t[0])) for t in tables}) == 1:  # a table that changes shape is skipped
                slug = _SAFE.sub("_", key)
                drawn.append(
                    plot_weights_over_epochs(
                        xs, tables, out / f"{name}_{slug}_epochs.png", title=f"{name}: {key} per edge over epochs"
                    )
                )
    for artifact in sorted(part.glob("*.json")):
        if artifact.name in NOT_ARTIFACTS:
            continue
        final_tables, primitives = _artifact_tables(artifact)
        if final_tables:
            drawn.append(
                plot_weights_final(
                    final_tables,
                    out / f"{name}_{artifact.stem}.png",
                    primitives=primitives,
                    row_labels=_row_labels(artifact, len(next(iter(final_tables.values())))),
                    title=f"{name}: {artifact.name}",
                )
            )
    drawn += _cell_diagrams(part / GENOTYPE_FILE, out)
    return drawn


def _cell_diagrams(path: Path, out: Path) -> list[Path]:
    """`normal.png` / `reduce.png` of a DARTS-cell genotype; nothing for a mobile-space genotype (blocks,
    not cells) or a missing file."""
    from binas.genotype import Genotype
    from binas.genotype.mobilenet import is_mobile_genotype_dict
    from binas.genotype.plot import save_cell_diagrams

    if not path.exists():
        return []
    try:
        if is_mobile_genotype_dict(json.loads(path.read_text(encoding="utf-8"))):
            return []
    except (OSError, ValueError):
        pass  # Genotype.load reports an unreadable file in one line
    return [p for p in save_cell_diagrams(Genotype.load(path), out) if p.suffix == ".png"]


def draw_run_plots(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Draw all plots of `run_dir` into `out_dir` (default `run_dir/plots`); return the PNG paths.

    Raises:
        BinasError: `run_dir` is not a directory, or holds neither metrics nor a genotype.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BinasError(f"run directory not found: {run_dir}")
    out = Path(out_dir) if out_dir is not None else run_dir / PLOTS_DIR
    drawn: list[Path] = []
    for name, part in run_parts(run_dir).items():
        drawn += _draw_part(name, part, out)
    if not drawn:
        raise BinasError(f"{run_dir}: nothing to plot (no {METRICS_FILE}, {GENOTYPE_FILE} or weight tables)")
    logger.info("wrote %d plot(s) to %s", len(drawn), out)
    return drawn
