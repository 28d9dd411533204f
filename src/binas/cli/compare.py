"""`binas compare RUN_DIR...`: a table of runs side by side (method, data set, archid, accuracy, size, time)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare finished runs in one table", description=__doc__)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (with summary.json)")
    p.add_argument("--format", choices=["markdown", "csv"], default="markdown", help="table format (default markdown)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from binas.workflows.compare import compare_runs

    print(compare_runs(args.run_dirs, args.format))
    return 0
