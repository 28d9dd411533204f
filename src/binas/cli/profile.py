"""`binas profile`: params, FLOPs, BOPs, OPs and memory of a network built from a genotype."""

from __future__ import annotations

import argparse
import json

from binas.quant.quantizers import WEIGHT_QUANTIZERS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile", help="count params / FLOPs / BOPs / OPs / Mbit of a genotype's network", description=__doc__
    )
    p.add_argument(
        "genotype", metavar="NAME_OR_JSON", help="zoo name (darts-v2, dcp-nas-l, ...), genotype.json or a run directory"
    )
    p.add_argument("--dataset", choices=["cifar10", "imagenet"], default="cifar10")
    p.add_argument("--real", action="store_true", help="profile the real-valued network")
    p.add_argument("--policy", choices=["released", "strict"], help="binarization policy (default: released)")
    p.add_argument(
        "--weight-quantizer",
        choices=WEIGHT_QUANTIZERS.names(),
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


def run(args: argparse.Namespace) -> int:
    from binas.errors import ConfigError
    from binas.genotype import GENOTYPES, get_entry, parse_genotype
    from binas.metrics.complexity import profile_genotype
    from binas.quant.policy import BinarizationPolicy

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
    if args.json:
        print(json.dumps(prof.to_dict()))
    else:
        binarizer = "" if args.real else f", weights {policy.weight_quantizer}"
        print(
            f"{args.genotype}: {args.dataset}, family {family}, policy {policy.name}{binarizer}, "
            f"C={args.channels or default_c}, {args.layers or default_l} cells"
        )
        print(prof.format_table(per_layer=args.per_layer))
    return 0
