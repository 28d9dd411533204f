"""`binas deploy`: the deployment files of a trained network (1-bit packed file, int8 ONNX), checked and timed.

Writes OUT_DIR/model.packed.pt, model.int8.onnx and deploy.json (default OUT_DIR: <run>/deploy). The
deployment form folds every BatchNorm and runs each 1-bit x 1-bit conv on an integer engine: binas's native
kernels (XNOR-popcount on sign bits, compiled on first use) where a C compiler is found, else PyTorch's oneDNN
int8 conv; it is checked on the test split against the trained network (integer sums layer
by layer, top-1 agreement, ONNX Runtime on the ONNX file) and timed against it at batch 1 and 64.
"""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    from binas.cli.common import positive_int

    p = sub.add_parser(
        "deploy", help="deployment files: packed 1-bit, int8 ONNX; checked and timed", description=__doc__
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a training run directory, its model.pt, or a packed file")
    p.add_argument("--out", metavar="DIR", help="output folder (default: deploy/ next to the model file)")
    p.add_argument(
        "--engine",
        choices=["native", "onednn", "reference"],  # binas.export.ENGINES (not imported: the parser loads no torch)
        help="integer engine of the deployment form (default: native where it builds, else onednn)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip the checks on the test split")
    p.add_argument("--no-timing", action="store_true", help="skip the latency measurement")
    p.add_argument("--repeats", type=positive_int, default=10, help="timed calls per batch size (default 10)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="batch size of the checks (default 256)")
    p.add_argument("--num-threads", type=positive_int, default=1, help="CPU threads (default 1)")
    p.add_argument("--json", action="store_true", help="print deploy.json")
    p.add_argument("--quiet", action="store_true", help="warnings only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from binas.engine.runtime import set_num_threads
    from binas.workflows.deploy import deploy_model

    set_num_threads(args.num_threads)
    result = deploy_model(
        args.checkpoint,
        args.out,
        engine=args.engine,
        verify=not args.no_verify,
        timing=not args.no_timing,
        repeats=args.repeats,
        batch_size=args.batch_size,
    )
    report = result.report
    if args.json:
        print(json.dumps(report))
        return 0
    sizes = report["sizes"]
    packed = sizes["packed"]
    print(f"wrote       {result.out_dir}: {', '.join(p.name for p in result.files.values())}")
    print(
        f"packed      {packed['file_bytes']:,} bytes = {packed['file_mbit']:.4f} Mbit: "
        f"{sizes['packed_over_estimate_plus_bn']:.2f}x (estimate {sizes['estimate_mbit']:.4f} + BN statistics "
        f"{sizes['bn_statistics_mbit']:.4f} Mbit)"
    )
    print(
        f"int8 ONNX   {sizes['onnx_int8_bytes']:,} bytes, {sizes['onnx_float_over_int8']:.2f}x smaller than the "
        f"float ONNX ({sizes['onnx_float_bytes']:,} bytes)"
    )
    checks = report.get("checks")
    if checks:
        print(
            f"int sums    {checks['integer_sums'] - checks['integer_sum_mismatches']:,} of {checks['integer_sums']:,} "
            f"equal over {checks['integer_convs']} 1-bit x 1-bit convs (first test batch)"
        )
        for key, label in (("deployed_vs_trained", f"deployed ({report['engine']})"), ("onnx_vs_trained", "int8 ONNX")):
            if key in checks:
                c = checks[key]
                print(
                    f"{label:<11} top-1 {c['top1_candidate']:.2f} % (trained {c['top1_reference']:.2f} %), same "
                    f"prediction on {c['agreement_pct']:.2f} % of {c['images']} test images, max |logit diff| "
                    f"{c['max_abs_logit_diff']:.2g}"
                )
    for row in report.get("latency", []):
        print(
            f"batch {row['batch']:<5} trained {row['trained_ms']:.2f} ms, deployed {row['deployed_ms']:.2f} ms "
            f"({row['speedup']:.2f}x faster, {report['threads']} thread(s), {report['cpu_capability']})"
        )
    return 0
