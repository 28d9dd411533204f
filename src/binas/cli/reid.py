"""`binas reid`: train a person re-identification model on any backbone (1-bit two-step or real).

With no arguments it trains on `digits-reid`, a bundled open-set retrieval stand-in made from
scikit-learn's digits (NOT person re-ID; see `binas.data.digits_reid`), in a few minutes on a CPU.
`--dataset market1501 --data-dir DIR --config market1501_reid` trains on a local Market-1501.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any, cast

from binas.cli.common import add_common_options, positive_int, resolve_typed_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reid", help="train a re-ID model (rank-1 / mAP) on a 1-bit or real backbone", description=__doc__
    )
    p.add_argument(
        "--backbone",
        metavar="GENOTYPE_OR_NAME",
        help="zoo genotype (default dcp-nas-l), genotype.json, search run dir, or a reference network "
        "(birealnet18, reactnet-a) (model.backbone)",
    )
    p.add_argument("--dataset", help="digits-reid (bundled stand-in, default) | market1501")
    p.add_argument("--data-dir", help="the Market-1501 folder (bounding_box_train/, query/, bounding_box_test/)")
    binary = p.add_mutually_exclusive_group()
    binary.add_argument("--binary", dest="binary", action="store_true", default=None, help="1-bit backbone (default)")
    binary.add_argument("--real", dest="binary", action="store_false", help="real-valued backbone")
    p.add_argument("--epochs", type=positive_int, help="epochs per phase (train.epochs)")
    p.add_argument("--teacher", metavar="SOURCE", help="distil from: self-real, or a finished reid run dir / model.pt")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted reid run (its config)")
    add_common_options(p)
    p.set_defaults(run=run)


def resolve_reid_config(args: argparse.Namespace) -> Any:
    """--config (a preset name or a YAML file), then --set, then this command's flags."""
    from binas.config.reid import ReidConfig

    flags = {
        "model.backbone": args.backbone,
        "model.binary": args.binary,
        "data.name": args.dataset,
        "data.data_dir": args.data_dir,
        "train.epochs": args.epochs,
        "teacher.source": args.teacher,
    }
    return resolve_typed_config(ReidConfig, args, flags)


def run(args: argparse.Namespace) -> int:
    from binas.config.io import from_dict, load_yaml
    from binas.config.reid import ReidConfig
    from binas.engine.run_log import run_log
    from binas.engine.rundir import make_run_dir
    from binas.engine.runtime import broadcast_object, setup_runtime
    from binas.errors import BinasError, ConfigError
    from binas.run_files import CONFIG_FILE
    from binas.workflows.reid import train_reid

    if args.resume:
        given = [flag for flag, value in (("--config", args.config), ("--set", args.overrides)) if value]
        if given:
            raise ConfigError(f"--resume continues a run with its own config; drop {', '.join(given)}")
        run_dir = Path(args.resume)
        if not (run_dir / CONFIG_FILE).is_file():
            raise BinasError(f"{run_dir} is not a reid run directory (no {CONFIG_FILE})")
        cfg = from_dict(ReidConfig, load_yaml(run_dir / CONFIG_FILE))
    else:
        cfg = resolve_reid_config(args)
    runtime = setup_runtime(cfg.device, cfg.seed, num_threads=cfg.num_threads)
    if not args.resume:
        made = make_run_dir(method="reid", out=args.out) if runtime.is_main else None
        run_dir = cast(Path, broadcast_object(made))
    progress = not args.quiet and sys.stderr.isatty()
    try:
        with run_log(run_dir) if runtime.is_main else contextlib.nullcontext():
            result = train_reid(cfg, run_dir, resume=bool(args.resume), progress=progress, runtime=runtime)
    except KeyboardInterrupt:
        if runtime.is_main:
            print(f"stopped; continue with: binas reid --resume {run_dir}", file=sys.stderr)
        raise
    if runtime.is_main:
        _report(result)
    return 0


def _report(result: Any) -> None:
    s = result.summary
    prof = s["backbone_profile"]
    note = "  (a stand-in made from digits, not person re-ID)" if s["stand_in"] else ""
    print(
        f"data        {s['dataset']}: {s['train_ids']} train ids, {s['query_images']} queries, "
        f"{s['gallery_images']} gallery images{note}"
    )
    print(f"backbone    {s['backbone']}, policy {s['policy']}, embedding {s['embedding_dim']}-d")
    for name, phase in s["phases"].items():
        print(
            f"{name:<12}rank-1 {phase['rank1']:.4f}  mAP {phase['mAP']:.4f}  ({phase['epochs']} epochs, "
            f"{phase['seconds']:.1f} s)"
        )
    print(
        f"test        rank-1 {result.rank1:.4f}  rank-5 {result.rank5:.4f}  rank-10 {result.rank10:.4f}  "
        f"mAP {result.mAP:.4f}"
    )
    print(f"backbone    params {prof['params']:,}  OPs {prof['ops']:,.0f}  memory {prof['memory_mbit']:.4f} Mbit")
    print(f"run dir     {result.run_dir}")
