"""`binas generate`: networks from a DDPNAS run under FLOPs / OPs / params / latency budgets (spec ddpnas §2).

Mobile space: one network per budget, by a knapsack over the learned distribution. DARTS space: one cell
per non-parametric op count N (height <= H), or per budget the best of them that fits. Writes
`RUN_DIR/generated/<label>.json`, `generated.json` and `generated.md`, and prints the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: CLI flag -> budget metric.
BUDGET_FLAGS: dict[str, str] = {"flops": "flops", "ops": "ops", "params": "params", "latency_ms": "latency_ms"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate networks under budgets from a DDPNAS run", description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished (or interrupted) `binas search --method ddpnas` run")
    p.add_argument("--flops", nargs="+", metavar="B", help="FLOPs budgets, e.g. 100M 200M 300M")
    p.add_argument("--ops", nargs="+", metavar="B", help="OPs budgets (BOPs/64 + FLOPs; for 1-bit networks)")
    p.add_argument("--params", nargs="+", metavar="B", help="parameter budgets, e.g. 3.5M")
    p.add_argument("--latency-ms", nargs="+", metavar="MS", help="latency budgets in ms (batch 1, this device)")
    p.add_argument("--height", type=int, help="DARTS space: maximal cell height H (1..4, default 4)")
    p.add_argument(
        "--non-param",
        type=int,
        nargs="+",
        metavar="N",
        help="DARTS space: numbers of non-parametric ops per normal cell (default 2 3 4 5 6)",
    )
    p.add_argument("--constrain-reduce", action="store_true", help="DARTS space: constrain the reduction cell too")
    p.add_argument("--channels", type=int, help="DARTS space: initial channels C of the measured network")
    p.add_argument("--layers", type=int, help="DARTS space: cells of the measured network (default: the run's)")
    p.add_argument("--image-size", type=int, help="input size to measure at (default: the searched data's)")
    p.add_argument(
        "--latency-table",
        metavar="FILE",
        help="mobile space: a table from `binas latency-table` "
        "(default: RUN_DIR/latency_table.json, measured on first use)",
    )
    p.add_argument("--device", help="device to time networks on: auto | cpu | cuda (default: the run's)")
    p.add_argument("--threads", type=int, help="CPU threads while timing (default: the run's num_threads)")
    p.add_argument("--quiet", action="store_true", help="warnings only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from binas.engine.runtime import resolve_device, set_num_threads
    from binas.generation.budgets import Budget, GenerationError, parse_amount
    from binas.generation.generate import (
        DEFAULT_NON_PARAM,
        MAX_HEIGHT,
        best_theta_summary,
        format_table,
        generate_darts,
        generate_mobile,
        write_outputs,
    )
    from binas.generation.run_record import load_search_record

    record = load_search_record(args.run_dir)
    budgets = [
        Budget(metric, parse_amount(v)) for flag, metric in BUDGET_FLAGS.items() for v in (getattr(args, flag) or [])
    ]
    device = resolve_device(args.device or record.config.device)
    set_num_threads(args.threads if args.threads is not None else record.config.num_threads)
    darts_flags = [f for f in ("height", "non_param", "channels", "layers") if getattr(args, f) is not None]
    if record.space == "mobilenet":
        if darts_flags or args.constrain_reduce:
            raise GenerationError(
                f"--{darts_flags[0].replace('_', '-') if darts_flags else 'constrain-reduce'} "
                "applies to the DARTS space; this run searched the mobilenet space"
            )
        rows = generate_mobile(
            record,
            budgets,
            device=device,
            image_size=args.image_size,
            latency_table=Path(args.latency_table) if args.latency_table else None,
        )
    else:
        if args.latency_table:
            raise GenerationError("--latency-table applies to the mobilenet space; DARTS networks are timed directly")
        height = MAX_HEIGHT if args.height is None else args.height
        rows = generate_darts(
            record,
            budgets,
            device=device,
            height=height,
            non_param=args.non_param or DEFAULT_NON_PARAM,
            constrain_reduce=args.constrain_reduce,
            channels=args.channels,
            layers=args.layers,
            image_size=args.image_size,
        )
    run_dir = Path(args.run_dir)
    paths = write_outputs(run_dir, rows, {"source": best_theta_summary(record), "device": str(device)})
    print(format_table(rows))
    print(f"wrote {paths[0]}, {paths[1]} and {len(rows)} genotype(s) in {run_dir / 'generated'}")
    return 0
