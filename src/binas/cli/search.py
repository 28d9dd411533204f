"""`binas search`: run a search method and write its run directory."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import cast

from binas.cli.common import add_common_options, resolve_config, search_flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search a cell architecture", description=__doc__)
    p.add_argument(
        "--method",
        help="dcp-nas (default) | darts | pc-darts | random | cp-nas | bnas | ddpnas (config key search.method)",
    )
    p.add_argument("--dataset", help="digits (bundled, default) | cifar10 | imagenet | synthetic")
    p.add_argument("--data-dir", help="folder of a local data set (cifar10, imagenet)")
    p.add_argument("--epochs", type=int, help="search epochs (config key search.epochs)")
    p.add_argument("--binary", action="store_true", default=None, help="search the 1-bit supernet")
    p.add_argument(
        "--space",
        choices=["darts", "mobilenet"],
        help="search space: darts cells (default) or mobilenet blocks (config key space.kind; ddpnas)",
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted search in RUN_DIR")
    add_common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from binas.engine.run_log import run_log
    from binas.engine.rundir import load_run_config, make_run_dir
    from binas.engine.runtime import broadcast_object, setup_runtime
    from binas.strategies import resolve_method_options
    from binas.workflows.search import search

    if args.resume:
        run_dir = Path(args.resume)
        cfg = load_run_config(run_dir)
    else:
        cfg = resolve_config(args, {**search_flags(args), "space.kind": args.space})
    cfg = resolve_method_options(cfg)  # an unknown method or option fails here, before any work
    runtime = setup_runtime(args.device or cfg.device, cfg.seed, num_threads=cfg.num_threads)
    if not args.resume:
        made = make_run_dir(method=cfg.search.method, out=args.out) if runtime.is_main else None
        run_dir = cast(Path, broadcast_object(made))  # rank 0's new directory, on every rank
    progress = not args.quiet and sys.stderr.isatty()
    try:
        with run_log(run_dir) if runtime.is_main else contextlib.nullcontext():
            result = search(cfg, run_dir, resume=bool(args.resume), progress=progress, runtime=runtime)
    except KeyboardInterrupt:
        print(f"stopped; continue with: binas search --resume {run_dir}", file=sys.stderr)
        raise
    if runtime.is_main:
        print(f"method      {cfg.search.method}")
        print(f"epochs      {result.epochs}  ({result.seconds:.1f} s)")
        print(f"genotype    {result.genotype}")
        print(f"run dir     {run_dir}")
    return 0
