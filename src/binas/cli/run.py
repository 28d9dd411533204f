"""`binas run`: search, retrain and evaluate in one command; prints a results table and the run directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast

from binas.cli.common import add_common_options, resolve_config, search_flags

#: Columns of the table printed at the end (keys of `binas.workflows.compare.COLUMNS`).
RESULT_COLUMNS = (
    "method",
    "policy",
    "archid",
    "top1",
    "params",
    "ops",
    "memory_mbit",
    "search_seconds",
    "train_seconds",
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="search + retrain + evaluate in one command", description=__doc__)
    p.add_argument("--method", help="search method (default: dcp-nas; config key search.method)")
    p.add_argument("--dataset", help="digits (bundled, default) | cifar10 | imagenet | synthetic")
    p.add_argument("--data-dir", help="folder of a local data set (cifar10, imagenet)")
    p.add_argument("--epochs", type=int, help="search epochs (config key search.epochs)")
    p.add_argument("--binary", action="store_true", default=None, help="search the 1-bit supernet")
    p.add_argument("--search-only", action="store_true", help="stop after the search (no retraining)")
    p.add_argument("--no-plots", action="store_true", help="do not draw RUN_DIR/plots (see `binas plot`)")
    add_common_options(p)
    p.set_defaults(run=run)


def results_table(summary: dict[str, Any]) -> str:
    """The short markdown table `binas run` prints (one row: this run)."""
    from binas.workflows.compare import COLUMNS, format_table

    return format_table([summary], columns=[c for c in COLUMNS if c.key in RESULT_COLUMNS])


def run(args: argparse.Namespace) -> int:
    from binas.config.preset_files import resolve_config_path
    from binas.engine.rundir import make_run_dir
    from binas.engine.runtime import broadcast_object, setup_runtime
    from binas.strategies import resolve_method_options
    from binas.workflows import run as workflow

    if args.config:
        args.config = str(resolve_config_path(args.config))
    cfg = resolve_config(args, search_flags(args))
    cfg = resolve_method_options(cfg)  # an unknown method or option fails here, before any work
    runtime = setup_runtime(args.device or cfg.device, cfg.seed, num_threads=cfg.num_threads)
    made = make_run_dir(method=cfg.search.method, out=args.out) if runtime.is_main else None
    run_dir = cast(Path, broadcast_object(made))  # rank 0's new directory, on every rank
    progress = not args.quiet and sys.stderr.isatty()
    result = workflow.run(
        cfg, run_dir, train=not args.search_only, plots=not args.no_plots, progress=progress, runtime=runtime
    )
    if runtime.is_main:
        print(results_table(result.summary))
        print(f"run dir: {run_dir}")
    return 0
