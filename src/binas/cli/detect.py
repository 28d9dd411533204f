"""`binas detect`: train an object detector on a searched (or reference) backbone, 1-bit or real.

The bundled default (`digits-detection`: scikit-learn digits on 64x64 canvases) needs no download:
`binas detect` trains the 1-bit two-step detector on darts-v2 and prints its test mAP.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast

from binas.cli.common import add_common_options, resolve_typed_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="train an object detector on a (1-bit) backbone", description=__doc__)
    p.add_argument(
        "--backbone", metavar="GENOTYPE_OR_NAME", help="zoo genotype, genotype.json, run dir or backbone name"
    )
    p.add_argument("--dataset", help="digits-detection (bundled, default) | voc | coco")
    p.add_argument(
        "--data-dir", help="folder of a local data set (voc: holds VOCdevkit/; coco: annotations/, train2017/)"
    )
    p.add_argument("--epochs", type=int, help="epochs per step (config key train.epochs)")
    p.add_argument("--batch-size", type=int, help="global batch size (train.batch_size)")
    p.add_argument("--image-size", type=int, help="square input side (data.image_size)")
    binary = p.add_mutually_exclusive_group()
    binary.add_argument("--binary", dest="binary", action="store_true", default=None, help="1-bit backbone (default)")
    binary.add_argument("--real", dest="binary", action="store_false", help="real-valued backbone")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted detection run")
    add_common_options(p)
    p.set_defaults(run=run)


def resolve_detect_config(args: argparse.Namespace) -> Any:
    """--config (a YAML file or a preset: `digits_detect`, `voc_detect`, `coco_detect`), then --set, then flags."""
    from binas.config.detect import DetectConfig

    flags = {
        "model.backbone": args.backbone,
        "data.name": args.dataset,
        "data.data_dir": args.data_dir,
        "data.image_size": args.image_size,
        "train.epochs": args.epochs,
        "train.batch_size": args.batch_size,
        "train.binary": args.binary,
    }
    return resolve_typed_config(DetectConfig, args, flags)


def run(args: argparse.Namespace) -> int:
    from binas.engine.run_log import run_log
    from binas.engine.rundir import make_run_dir
    from binas.engine.runtime import broadcast_object, setup_runtime
    from binas.errors import ConfigError
    from binas.workflows.detect import detect, load_detect_run_config

    if args.resume:
        given = [
            f for f, v in (("--config", args.config), ("--set", args.overrides), ("--backbone", args.backbone)) if v
        ]
        if given:
            raise ConfigError(f"--resume continues a run with its own config; drop {', '.join(given)}")
        run_dir = Path(args.resume)
        cfg = load_detect_run_config(run_dir)
    else:
        cfg = resolve_detect_config(args)
    runtime = setup_runtime(args.device or cfg.device, cfg.seed, num_threads=cfg.num_threads)
    if not args.resume:
        made = make_run_dir(method="detect", out=args.out) if runtime.is_main else None
        run_dir = cast(Path, broadcast_object(made))
    progress = not args.quiet and sys.stderr.isatty()
    try:
        with run_log(run_dir) if runtime.is_main else _nothing():
            result = detect(cfg, run_dir, resume=bool(args.resume), progress=progress, runtime=runtime)
    except KeyboardInterrupt:
        if runtime.is_main:
            print(f"stopped; continue with: binas detect --resume {run_dir}", file=sys.stderr)
        raise
    if runtime.is_main:
        s = result.summary
        b = s["backbone"]
        print(f"detector    {b['name']} backbone, policy {b['policy']}, {s['dataset']} at {s['image_size']} px")
        for name, phase in s["phases"].items():
            scores = f"mAP {phase.get('test_map', 0):.4f}  mAP50 {phase.get('test_map50', 0):.4f}"
            print(f"{name:<12}{scores}  ({phase['epochs']} epochs, {phase['seconds']:.1f} s)")
        print(f"test        mAP {result.map:.4f}  mAP50 {result.map50:.4f}  mAP75 {s['map75']:.4f}")
        print(f"backbone    params {b['params']:,}  OPs {b['ops']:,.0f}  memory {b['memory_mbit']:.4f} Mbit")
        print(f"run dir     {result.run_dir}")
    return 0


def _nothing() -> Any:
    import contextlib

    return contextlib.nullcontext()
