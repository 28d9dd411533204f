"""`binas plot RUN_DIR`: redraw a run's curves, architecture heat maps and cell diagrams into RUN_DIR/plots/."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="draw the PNG plots of a run directory", description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (binas run, search or train)")
    p.add_argument("--to", metavar="DIR", help="write the PNGs here instead of RUN_DIR/plots")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from binas.plots import draw_run_plots

    paths = draw_run_plots(args.run_dir, args.to)
    for path in paths:
        print(path)
    return 0
