"""`binas profile`: params, FLOPs, BOPs, OPs and memory of a network built from a genotype.

Given a training run directory (or a `binas run` directory), it profiles the network that run trained,
read from its model file (shape, binarization, input size), so the numbers match the run's summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from binas.metrics.complexity import Profile


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile", help="count params / FLOPs / BOPs / OPs / Mbit of a genotype's network", description=__doc__
    )
    p.add_argument(
        "genotype",
        metavar="NAME_OR_JSON",
        help="zoo name (darts-v2, dcp-nas-l, ...), genotype.json, a search run directory, or a training / "
        "`binas run` directory (then: the network it trained, as trained)",
    )
    p.add_argument("--dataset", choices=["cifar10", "imagenet", "digits"], help="input size and stem (default cifar10)")
    p.add_argument("--real", action="store_true", help="profile the real-valued network")
    p.add_argument("--policy", choices=["released", "strict"], help="binarization policy (default: released)")
    p.add_argument(
        "--weight-quantizer",
        choices=("mean_abs", "learned_scale"),  # binas.quant.quantizers.WEIGHT_QUANTIZERS (tested equal)
        help="weight binarizer: mean_abs (mean |W| scale) or learned_scale (the DCP-NAS release's "
        "MConv); default: the genotype's as published (learned_scale for dcp-nas-l), else mean_abs",
    )
    p.add_argument("--family", choices=["darts", "dcp"], help="op family (default: the genotype's, else darts)")
    p.add_argument("--channels", type=int, help="initial channels C (default: the genotype's published size)")
    p.add_argument("--layers", type=int, help="number of cells (default: the genotype's published size)")
    p.add_argument("--num-classes", type=int, help="default: 10 for cifar10, 1000 for imagenet")
    p.add_argument(
        "--bops-convention",
        choices=["strict", "lenient"],
        default="strict",
        help="lenient counts every binary-weight conv as BOPs (default strict: only 1-bit x 1-bit)",
    )
    p.add_argument("--per-layer", action="store_true", help="print the per-layer table")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


#: Flags that choose the network's shape or binarization: a trained network has its own.
SHAPE_FLAGS = ("dataset", "real", "policy", "weight_quantizer", "family", "channels", "layers", "num_classes")


def _trained_model(path: Path) -> Path | None:
    """The final model file of a training run directory or of a `binas run` directory, if there is one."""
    from binas.run_files import MODEL_FILE, TRAIN_DIR

    for candidate in (path / MODEL_FILE, path / TRAIN_DIR / MODEL_FILE):
        if path.is_dir() and candidate.is_file():
            return candidate
    return None


def run(args: argparse.Namespace) -> int:
    model_path = _trained_model(Path(args.genotype))
    if model_path is not None:
        return _profile_trained(args, model_path)
    from binas.nets.reference import is_reference

    if is_reference(args.genotype):
        return _profile_reference(args)
    return _profile_genotype(args)


def _profile_reference(args: argparse.Namespace) -> int:
    """A reference network (`birealnet18`, `reactnet-a`) at its published width unless --channels."""
    from binas.errors import ConfigError
    from binas.metrics.complexity import DATASET_INPUTS, profile_model
    from binas.nets.reference import build_reference
    from binas.quant.policy import BinarizationPolicy

    if args.family or args.layers or args.weight_quantizer:
        raise ConfigError(
            f"{args.genotype} has a fixed depth and binarizer; drop --family / --layers / --weight-quantizer"
        )
    if args.real and args.policy:
        raise ConfigError("--real profiles the real-valued network; drop --policy")
    dataset = args.dataset or "cifar10"
    stem, input_size, classes = DATASET_INPUTS[dataset]
    policy = BinarizationPolicy.real() if args.real else BinarizationPolicy.preset(args.policy or "released")
    net = build_reference(
        args.genotype, num_classes=args.num_classes or classes, in_channels=input_size[1], channels=args.channels,
        stem=stem, policy=policy,
    )  # fmt: skip
    prof = profile_model(net, input_size, bops_convention=args.bops_convention)
    width = args.channels or net.published_channels
    _print(args, prof, f"{args.genotype}: {dataset}, width {width}, {stem} stem, policy {policy.name}")
    return 0


def _profile_trained(args: argparse.Namespace, model_path: Path) -> int:
    from binas.errors import ConfigError
    from binas.metrics.complexity import profile_model
    from binas.nets.model_file import load_model

    given = [f"--{f.replace('_', '-')}" for f in SHAPE_FLAGS if getattr(args, f) not in (None, False)]
    if given:
        raise ConfigError(
            f"{args.genotype} holds a trained network ({model_path}); it is profiled as trained, so drop "
            f"{', '.join(given)} (or give its genotype.json to profile another shape)"
        )
    model, spec, _ = load_model(model_path)
    prof = profile_model(model, spec.input_size, bops_convention=args.bops_convention)
    size = "x".join(map(str, spec.input_size[2:]))
    _print(
        args,
        prof,
        f"{model_path}: {spec.dataset} {size}, {spec.describe()}, policy {spec.policy['name']}",
    )
    return 0


def _print(args: argparse.Namespace, prof: Profile, header: str) -> None:
    if args.json:
        print(json.dumps(prof.to_dict()))
    else:
        print(header)
        print(prof.format_table(per_layer=args.per_layer))


def _profile_genotype(args: argparse.Namespace) -> int:
    from binas.errors import ConfigError
    from binas.genotype import GENOTYPES, get_entry, parse_genotype
    from binas.metrics.complexity import profile_genotype
    from binas.quant.policy import BinarizationPolicy

    args.dataset = args.dataset or "cifar10"
    genotype = parse_genotype(args.genotype)
    entry = get_entry(args.genotype) if args.genotype in GENOTYPES else None
    imagenet = args.dataset == "imagenet"
    family = args.family or (entry.family if entry else "darts")
    default_c = (entry.imagenet_channels if imagenet else entry.cifar_channels) if entry else (48 if imagenet else 36)
    default_l = (entry.imagenet_layers if imagenet else entry.cifar_layers) if entry else (14 if imagenet else 20)
    if args.real and (args.policy or args.weight_quantizer):
        raise ConfigError("--real profiles the real-valued network; drop --policy / --weight-quantizer")
    weight_quantizer = args.weight_quantizer or (entry.weight_quantizer if entry else "mean_abs")
    policy = (
        BinarizationPolicy.real()
        if args.real
        else BinarizationPolicy.preset(args.policy or "released", weight_quantizer=weight_quantizer)
    )
    prof = profile_genotype(
        genotype,
        dataset=args.dataset,
        family=family,
        policy=policy,
        channels=args.channels or default_c,
        layers=args.layers or default_l,
        num_classes=args.num_classes or (1000 if imagenet else 10),
        bops_convention=args.bops_convention,
    )
    binarizer = "" if args.real else f", weights {policy.weight_quantizer}"
    _print(
        args,
        prof,
        f"{args.genotype}: {args.dataset}, family {family}, policy {policy.name}{binarizer}, "
        f"C={args.channels or default_c}, {args.layers or default_l} cells",
    )
    return 0
