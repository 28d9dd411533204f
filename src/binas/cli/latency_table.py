"""`binas latency-table`: measure the latency lookup table of the mobile space on this device.

Every candidate of every block (and the fixed stem, first block and head) is timed at batch 1 (median
of repeated eval-mode forwards) and saved as JSON; `binas generate --latency-ms` reuses the table. An
existing table at `--out` measured under the same conditions is completed, not re-measured.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_FILE = "latency_table.json"
#: Classes assumed for the classifier when neither a run directory nor a data set says (digits, CIFAR-10).
DEFAULT_NUM_CLASSES = 10


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "latency-table", help="measure the mobile space's latency lookup table on this device", description=__doc__
    )
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="take the space, data size and policy of this run")
    p.add_argument(
        "--space",
        choices=["darts", "mobilenet"],
        default="mobilenet",
        help="search space (only mobilenet has per-block latency tables)",
    )
    p.add_argument("--out", metavar="FILE", help=f"table file (default: RUN_DIR/{DEFAULT_FILE} or ./{DEFAULT_FILE})")
    p.add_argument("--image-size", type=int, help="input size (default: the run's / data.image_size / 16)")
    p.add_argument("--num-classes", type=int, help=f"classifier outputs (default: run's, else {DEFAULT_NUM_CLASSES})")
    p.add_argument("--batch-size", type=int, default=1, help="batch size to time at (default 1)")
    p.add_argument("--repeats", type=int, help="timed forwards per entry (median; default 10)")
    p.add_argument("--binary", action="store_true", default=None, help="time the 1-bit blocks (space.policy)")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML config (space.mobilenet, space.policy, ...)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set space.mobilenet.depth=4 (repeatable)",
    )
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: the config's)")
    p.add_argument("--threads", type=int, help="CPU threads while timing (default: the config's num_threads)")
    p.add_argument("--quiet", action="store_true", help="warnings only")
    p.set_defaults(run=run, seed=None)


def run(args: argparse.Namespace) -> int:
    from binas.cli.common import resolve_config
    from binas.data import DIGITS_IMAGE_SIZE
    from binas.engine.runtime import resolve_device, set_num_threads
    from binas.generation.budgets import GenerationError
    from binas.generation.latency import LatencyTable
    from binas.generation.mobile_costs import measure_mobile_latency
    from binas.quant.policy import BinarizationPolicy

    if args.space != "mobilenet":
        raise GenerationError(
            "latency tables are built for the mobilenet space; DARTS-space networks are timed "
            "directly by `binas generate` (their cells are not a chain of blocks)"
        )
    if args.batch_size < 1 or (args.repeats is not None and args.repeats < 1):
        raise GenerationError("--batch-size and --repeats must be positive")
    if args.run_dir:
        from binas.generation.run_record import load_search_record

        record = load_search_record(args.run_dir)
        cfg, policy = record.config, record.policy()
        size, classes, channels = record.image_size, record.num_classes, record.in_channels
        out = Path(args.out) if args.out else Path(args.run_dir) / DEFAULT_FILE
    else:
        cfg = resolve_config(args, {"search.binary": args.binary})
        binary = bool(cfg.search.binary)
        policy = cfg.space.binary_policy() if binary else BinarizationPolicy.real()
        size, classes, channels = cfg.data.image_size or DIGITS_IMAGE_SIZE, DEFAULT_NUM_CLASSES, 3
        out = Path(args.out or DEFAULT_FILE)
    size = args.image_size or size
    classes = args.num_classes or classes
    device = resolve_device(args.device or cfg.device)
    set_num_threads(args.threads if args.threads is not None else cfg.num_threads)
    table = None
    if out.is_file():
        table = LatencyTable.load(out)
        table.check_matches(device, args.batch_size)
    before = 0 if table is None else len(table.entries)
    table = measure_mobile_latency(
        cfg.space.mobilenet,
        num_classes=classes,
        in_channels=channels,
        image_size=size,
        policy=policy,
        device=device,
        batch_size=args.batch_size,
        table=table,
        repeats=args.repeats,
    )
    table.save(out)
    print(f"latency table  {out}")
    print(f"device         {table.device}, {table.threads} thread(s), batch {table.batch_size}")
    print(f"entries        {len(table.entries)} ({len(table.entries) - before} measured now)")
    return 0
