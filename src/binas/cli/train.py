"""`binas train`: retrain a genotype's network (1-bit two-step by default) and write its run directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast

from binas.cli.common import add_common_options, yaml_value
from binas.run_files import CONFIG_FILE, GENOTYPE_FILE

ROLE_KEYS = ("data", "space")  # what a search run directory given as GENOTYPE lends as defaults


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the network of a genotype (1-bit two-step, KD, ...)", description=__doc__)
    p.add_argument(
        "genotype",
        nargs="?",
        metavar="GENOTYPE_OR_RUN_DIR",
        help="zoo name (darts-v2, dcp-nas-l, ...), genotype.json, a search run directory (its data "
        "and space settings become the defaults), or a reference 1-bit network: birealnet18, reactnet-a "
        "(--channels: its base width)",
    )
    p.add_argument(
        "--genotype", dest="genotype_option", metavar="GENOTYPE_OR_RUN_DIR", help="the same as the positional argument"
    )
    p.add_argument("--dataset", help="digits (bundled, default) | cifar10 | imagenet | synthetic")
    p.add_argument("--data-dir", help="folder of a local data set (cifar10, imagenet)")
    p.add_argument("--epochs", type=int, help="epochs per step (config key train.epochs)")
    p.add_argument("--batch-size", type=int, help="global batch size (train.batch_size)")
    binary = p.add_mutually_exclusive_group()
    binary.add_argument(
        "--binary", dest="binary", action="store_true", default=None, help="train the 1-bit network (default)"
    )
    binary.add_argument("--real", dest="binary", action="store_false", help="train the real-valued network")
    steps = p.add_mutually_exclusive_group()
    steps.add_argument(
        "--two-step",
        dest="two_step",
        action="store_true",
        default=None,
        help="step 1 binary activations, step 2 binary weights too (default, spec §3.2)",
    )
    steps.add_argument("--one-step", dest="two_step", action="store_false", help="train the 1-bit network directly")
    p.add_argument("--policy", choices=["released", "strict"], help="binarization policy (space.policy)")
    p.add_argument("--family", choices=["darts", "dcp"], help="op family (default: the genotype's, else space.family)")
    p.add_argument("--channels", type=int, help="initial channels C (train.net.channels)")
    p.add_argument("--layers", type=int, help="number of cells (train.net.layers)")
    p.add_argument("--loss", choices=["ce", "kd", "ce+kd", "cp"], help="training loss (train.loss.kind)")
    p.add_argument(
        "--teacher",
        metavar="SOURCE",
        help="KD teacher: self-real (default), a model checkpoint or "
        "train run dir, or torchvision:NAME (e.g. torchvision:resnet34)",
    )
    p.add_argument("--optimizer", choices=["adamw", "sgd"], help="train.optim.name (default adamw)")
    p.add_argument("--lr", type=float, help="peak learning rate (train.optim.lr)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted training run (its config and genotype)")
    add_common_options(p)
    p.set_defaults(run=run)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def resolve_train_config(args: argparse.Namespace) -> Any:
    """Run-dir defaults (data/space of a search run), then --config, --set, then this command's flags."""
    from binas.config.io import apply_overrides, from_dict, load_yaml
    from binas.config.preset_files import resolve_config_path
    from binas.config.schema import RunConfig

    data: dict[str, Any] = {}
    source = Path(args.genotype)
    if source.is_dir() and (source / CONFIG_FILE).is_file():
        run = load_yaml(source / CONFIG_FILE)
        data = {k: run[k] for k in ROLE_KEYS if k in run}
    if args.config:
        data = _merge(data, load_yaml(resolve_config_path(args.config)))
    data = apply_overrides(data, args.overrides)
    flags = {
        "seed": args.seed,
        "device": args.device,
        "data.name": args.dataset,
        "data.data_dir": args.data_dir,
        "train.epochs": args.epochs,
        "train.batch_size": args.batch_size,
        "train.binary": args.binary,
        "train.two_step": args.two_step,
        "space.policy": args.policy,
        "train.net.family": args.family,
        "train.net.channels": args.channels,
        "train.net.layers": args.layers,
        "train.loss.kind": args.loss,
        "train.teacher.source": args.teacher,
        "train.optim.name": args.optimizer,
        "train.optim.lr": args.lr,
    }
    data = apply_overrides(data, [f"{k}={yaml_value(v)}" for k, v in flags.items() if v is not None])
    return from_dict(RunConfig, data)


def run(args: argparse.Namespace) -> int:
    from binas.engine.rundir import load_run_config, make_run_dir
    from binas.engine.runtime import broadcast_object, setup_runtime
    from binas.errors import ConfigError
    from binas.workflows.train import resolve_network, train

    if args.genotype_option and args.genotype and args.genotype_option != args.genotype:
        raise ConfigError("give the genotype once: as GENOTYPE_OR_RUN_DIR or as --genotype")
    args.genotype = args.genotype or args.genotype_option
    if args.resume and args.genotype:
        raise ConfigError("give either GENOTYPE_OR_RUN_DIR or --resume RUN_DIR, not both")
    if args.resume:
        run_dir = Path(args.resume)
        cfg = load_run_config(run_dir)
        # a reference network's run has no genotype file: its config names the network (train.net.arch)
        genotype: str | None = None if cfg.train.net.arch is not None else str(run_dir / GENOTYPE_FILE)
    elif args.genotype:
        cfg = resolve_network(resolve_train_config(args), args.genotype)
        genotype = args.genotype
    else:
        raise ConfigError("give a genotype (zoo name, genotype.json or run directory) or --resume RUN_DIR")
    runtime = setup_runtime(args.device or cfg.device, cfg.seed, num_threads=cfg.num_threads)
    if not args.resume:
        made = make_run_dir(method="train", out=args.out) if runtime.is_main else None
        run_dir = cast(Path, broadcast_object(made))  # rank 0's new directory, on every rank
    progress = not args.quiet and sys.stderr.isatty()
    try:
        result = train(cfg, genotype, run_dir, resume=bool(args.resume), progress=progress, runtime=runtime)
    except KeyboardInterrupt:
        if runtime.is_main:
            print(f"stopped; continue with: binas train --resume {run_dir}", file=sys.stderr)
        raise
    if runtime.is_main:
        _report(result, cfg)
    return 0


def _report(result: Any, cfg: Any) -> None:
    summary = result.summary
    from binas.nets.model_file import ModelSpec

    shape = ModelSpec.from_dict({**summary["network"], "genotype": summary["genotype"] or {}}).describe()
    print(
        f"network     {shape}, policy {summary['policy']}"
        f", loss {summary['loss_kind']}" + (f" (teacher {summary['teacher']})" if summary["teacher"] else "")
    )
    for name, phase in result.phases.items():
        print(
            f"{name:<12}top1 {phase['top1']:6.2f}  top5 {phase['top5']:6.2f}  "
            f"({phase['epochs']} epochs, {phase['seconds']:.1f} s)"
        )
    print(f"test        top1 {result.top1:.2f}  top5 {result.top5:.2f}  loss {result.loss:.4f}  ({cfg.data.name})")
    print(
        f"complexity  params {summary['params']:,}  FLOPs {summary['flops']:,}  BOPs {summary['bops']:,}  "
        f"OPs {summary['ops']:,.0f}  memory {summary['memory_mbit']:.4f} Mbit"
    )
    print(f"run dir     {result.run_dir}")
