"""`binas export`: write a trained network as ONNX (float: binary weights folded to +-beta, sign ops; int8: the
deployment form's `ConvInteger` graph) or packed 1-bit. `binas deploy` writes and checks both deployment files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SUFFIXES = {"onnx": ".onnx", "onnx-int8": ".int8.onnx", "packed": ".packed.pt"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained network (ONNX, or packed 1-bit weights)", description=__doc__)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a training run directory or its model.pt")
    p.add_argument(
        "--format",
        choices=sorted(SUFFIXES),
        default="onnx",
        help="onnx (default, float), onnx-int8 (integer 1-bit convs) or packed",
    )
    p.add_argument(
        "--out", metavar="FILE", help="output file (default: next to the checkpoint, model.onnx / model.packed.pt)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="warnings only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from binas.export import export_onnx, save_packed
    from binas.metrics.complexity import profile_model
    from binas.nets.model_file import load_model, resolve_model_path

    path = resolve_model_path(args.checkpoint)
    model, spec, _ = load_model(path)
    out = Path(args.out) if args.out else path.with_name(path.name.split(".")[0] + SUFFIXES[args.format])
    estimate = profile_model(model, spec.input_size).memory_mbit
    report: dict = {"checkpoint": str(path), "format": args.format, "file": str(out)}
    if args.format.startswith("onnx"):
        export_onnx(model, out, spec.input_size, form="int8" if args.format == "onnx-int8" else "float")
        report.update(file_bytes=out.stat().st_size, file_mbit=out.stat().st_size * 8 / 1e6)
    else:
        report.update(save_packed(model, spec, out).to_dict())
    report["estimate_mbit"] = estimate  # what `binas profile` / summary.json report as memory_mbit
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"wrote       {out}  ({args.format})")
    print(f"file        {report['file_bytes']:,} bytes = {report['file_mbit']:.4f} Mbit")
    if args.format == "packed":
        print(
            f"payload     {report['payload_mbit']:.4f} Mbit: {report['binary_weight_bits']:,} weight bits, "
            f"{report['scale_bits'] // 32:,} scales, {report['real_param_bits'] // 32:,} real params, "
            f"{report['buffer_bits'] // 32:,} BN statistics"
        )
    print(f"estimate    {estimate:.4f} Mbit (binas profile: binary weights, scales, real params; no BN statistics)")
    return 0
