"""`binas eval`: top-1/top-5 accuracy, loss and complexity (params, FLOPs, BOPs, OPs, Mbit) of a trained network."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a trained network (accuracy, loss, complexity)", description=__doc__)
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a training run directory, its model.pt / step1.pt / "
        "teacher.pt / checkpoint.pt, or a packed file from `binas export --format packed`",
    )
    p.add_argument("--dataset", help="evaluate on this data set (default: the one it was trained on)")
    p.add_argument("--data-dir", help="folder of a local data set (default: the one it was trained with)")
    p.add_argument("--split", choices=["test", "train"], default="test", help="data split (default test)")
    p.add_argument("--batch-size", type=int, default=256, help="evaluation batch size (default 256)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--num-threads", type=int, help="CPU threads")
    p.add_argument(
        "--bops-convention",
        choices=["strict", "lenient"],
        default="strict",
        help="lenient counts every binary-weight conv as BOPs (default strict: only 1-bit x 1-bit)",
    )
    p.add_argument("--per-layer", action="store_true", help="print the per-layer complexity table")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="warnings only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from binas.data import load_dataset
    from binas.engine.evaluator import evaluate
    from binas.engine.runtime import place, resolve_device, set_num_threads
    from binas.errors import CheckpointError, ConfigError
    from binas.export import load_packed
    from binas.metrics.complexity import profile_model
    from binas.nets.model_file import load_model, resolve_model_path

    set_num_threads(args.num_threads)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be positive, got {args.batch_size}")
    path = resolve_model_path(args.checkpoint)
    try:
        model, spec, _ = load_model(path)
    except CheckpointError as error:  # perhaps the deployed form: `binas export --format packed`
        try:
            model, spec = load_packed(path)
        except CheckpointError:
            raise error from None
    device = resolve_device(args.device)
    name = args.dataset or spec.dataset
    data = load_dataset(name, args.split, data_dir=args.data_dir or spec.data_dir, image_size=spec.image_size)
    if data.info.num_classes != spec.num_classes or data.info.in_channels != spec.in_channels:
        raise ConfigError(
            f"{path} was trained for {spec.num_classes} classes of {spec.in_channels}-channel images; "
            f"{name} has {data.info.num_classes} of {data.info.in_channels}"
        )
    # complexity of the network the spec describes (a packed model's plain convs would all count as real)
    prof = profile_model(spec.build(auxiliary=False), spec.input_size, bops_convention=args.bops_convention)
    model = place(model, device)
    result = evaluate(model, data, batch_size=args.batch_size, device=device)
    report = {
        "checkpoint": str(path),
        "dataset": name,
        "split": args.split,
        **result.to_dict(),
        **prof.to_dict(),
        "policy": spec.policy["name"],
        "family": spec.family,
        "channels": spec.channels,
        "layers": spec.layers,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"model       {path}  ({spec.describe()}, policy {spec.policy['name']})")
    print(f"data        {name} {args.split}, {result.samples} images, {spec.image_size}x{spec.image_size}")
    print(f"top-1       {result.top1:.2f} %")
    print(f"top-5       {result.top5:.2f} %")
    print(f"loss        {result.loss:.4f}")
    print(prof.format_table(per_layer=args.per_layer))
    return 0
