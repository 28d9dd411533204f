"""`binas run`: search, retrain and evaluate in one command; prints a results table and the run directory."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from binas.cli.common import add_common_options, resolve_config

#: Columns of the table printed at the end (keys of `binas.reporting.COLUMNS`).
RESULT_COLUMNS = ("method", "archid", "top1", "params", "ops", "memory_mbit", "search_seconds", "train_seconds")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="search + retrain + evaluate in one command", description=__doc__)
    p.add_argument("--method", help="search method (default: dcp-nas if available, else darts; config key "
                   "search.method)")
    p.add_argument("--dataset", help="digits (bundled, default) | cifar10 | imagenet | synthetic")
    p.add_argument("--data-dir", help="folder of a local data set (cifar10, imagenet)")
    p.add_argument("--epochs", type=int, help="search epochs (config key search.epochs)")
    p.add_argument("--binary", action="store_true", default=None, help="search the 1-bit supernet")
    p.add_argument("--search-only", action="store_true", help="stop after the search (no retraining)")
    p.add_argument("--no-plots", action="store_true", help="do not draw RUN_DIR/plots (see `binas plot`)")
    add_common_options(p)
    p.set_defaults(run=run)


def _config_names_method(args: argparse.Namespace) -> bool:
    """Whether the config file or a --set override already chooses `search.method`."""
    from binas.config.io import apply_overrides, load_yaml

    data = load_yaml(args.config) if args.config else {}
    data = apply_overrides(data, args.overrides)
    search = data.get("search")
    return isinstance(search, dict) and search.get("method") is not None


def results_table(summary: dict[str, Any]) -> str:
    """The short markdown table `binas run` prints (one row: this run)."""
    from binas.reporting import COLUMNS, format_table

    return format_table([summary], columns=[c for c in COLUMNS if c.key in RESULT_COLUMNS])


def run(args: argparse.Namespace) -> int:
    from binas import pipeline
    from binas.api import resolve_search_options
    from binas.config.preset_files import resolve_config_path
    from binas.engine.rundir import make_run_dir
    from binas.engine.runtime import broadcast_object, setup_runtime

    if args.config:
        args.config = str(resolve_config_path(args.config))
    method = args.method or (None if _config_names_method(args) else pipeline.default_method())
    cfg = resolve_config(args, {
        "search.method": method, "data.name": args.dataset, "data.data_dir": args.data_dir,
        "search.epochs": args.epochs, "search.binary": args.binary,
    })
    cfg, _ = resolve_search_options(cfg)  # an unknown method or option fails here, before any work
    runtime = setup_runtime(args.device or cfg.device, cfg.seed, num_threads=cfg.num_threads)
    run_dir = broadcast_object(make_run_dir(method=cfg.search.method, out=args.out) if runtime.is_main else None)
    progress = not args.quiet and sys.stderr.isatty()
    result = pipeline.run(cfg, run_dir, train=not args.search_only, plots=not args.no_plots,
                          progress=progress, runtime=runtime)
    if runtime.is_main:
        print(results_table(result.summary))
        print(f"run dir: {run_dir}")
    return 0
