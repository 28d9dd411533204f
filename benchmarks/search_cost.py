"""Search cost on this machine (a script, not a test): seconds per step / epoch and peak memory.

(a) one search step at the DARTS CIFAR-10 search size, and the share of DCP-NAS's curvature product;
(b) one digits epoch of DARTS against DCP-NAS (`search_cost_step.py`);
(c) one search epoch of every registered method, with the estimated cost of its whole default search
    (`search_cost_methods.py`);
(d) how DARTS, PC-DARTS and DCP-NAS grow with cells, channels and batch size (`search_cost_scaling.py`).
Every setting comes from the library: its shipped presets, config defaults and strategy options.

Each case runs in a fresh process, so its peak RSS is its own (`--isolation none` runs them all in this
process, fast, with a running-maximum RSS; the default for `--quick`). On CUDA (`--device cuda`) every
case also reports `torch.cuda.max_memory_allocated`. The machine is shared, so every DCP-NAS ratio of
(a)-(c) divides by a DARTS step / epoch timed in the same process next to it, not in another process at
another time; (d) runs the three methods of a point one after the other. Run it on a quiet machine
anyway (`uptime`). Results merge into the JSON file: parts not run keep their previous results.

    python benchmarks/search_cost.py [--parts a,b,c,d] [--quick] [--threads N] [--device cpu]
                                     [--isolation auto|process|none] [--out benchmarks/results/search_cost.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import search_cost_methods as methods
import search_cost_scaling as scaling
import search_cost_step as step
from search_cost_common import load_existing, merge_results, run_case, run_in_process

DEFAULT_OUT = Path(__file__).parent / "results" / "search_cost.json"
PARTS = ("a", "b", "c", "d")


def parse_parts(text: str) -> set[str]:
    parts = {p.strip().lower() for p in text.split(",") if p.strip()}
    if not parts or not parts <= set(PARTS):
        raise argparse.ArgumentTypeError(f"--parts takes a comma-separated subset of {','.join(PARTS)}, got {text!r}")
    return parts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts",
        type=parse_parts,
        default=set(PARTS),
        help="comma-separated parts to run, of a,b,c,d (default: all); the others keep their results in --out",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"(a) 1 timed repeat, (b) {step.QUICK_SAMPLES} digits samples, (c) and (d) tiny sizes, 1 epoch / "
        "batch; implies --isolation none unless given",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="device of every case: cpu (default), cuda, cuda:<i>")
    parser.add_argument(
        "--isolation",
        choices=("auto", "process", "none"),
        default="auto",
        help="process: every case in a fresh spawned process (its own peak RSS); none: all in this process "
        "(peak RSS is a running maximum); auto: none with --quick, else process",
    )
    parser.add_argument(
        "--scaling-batches",
        type=int,
        default=None,
        help=f"(d) timed batches per point (default {scaling.SCALING_BATCHES}, --quick "
        f"{scaling.QUICK_SCALING_BATCHES})",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file (merged into)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts: set[str] = args.parts
    isolation = args.isolation if args.isolation != "auto" else ("none" if args.quick else "process")
    run, isolated = (run_case, True) if isolation == "process" else (run_in_process, False)
    existing = load_existing(args.out)
    new: dict[str, Any] = {}
    if parts & {"a", "b"}:
        new |= step.part_ab(args, parts, run)
    if "c" in parts:
        new["methods"] = methods.part_c(args, run, isolated)
    if "d" in parts:
        new["scaling"] = scaling.part_d(args, run, isolated)
    result = merge_results(existing, new)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if parts & {"a", "b"}:
        step.print_ab(result, parts)
    if "c" in parts:
        methods.print_c(result["methods"])
    if "d" in parts:
        scaling.print_d(result["scaling"])
    print(f"written to {args.out} (parts {','.join(sorted(parts))}; the others kept)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
