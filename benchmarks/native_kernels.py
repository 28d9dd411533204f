"""binas's native 1-bit kernels layer by layer, and what their buffer pool does end to end (a script, not a test).

For the conv shapes of the deployment benchmark's network (darts-v2, C=16, 5 cells, 32x32, batch 64), one
thread, side by side (round robin): the fp32 conv (channels_last), the native kernel (byte tables and, for
dense convs, XNOR-popcount; float output, and `-sign-out`: the sign its 1-bit consumer reads, as a chained
conv outputs) and oneDNN's int8 conv (`IntegerConv2d(engine="onednn")`), each on its usual input (floats for
fp32 and oneDNN; sign bits for dense and int8 signs for depth-wise native convs, as chained 1-bit convs hand
them over). End to end: the network deployed on the native engine with the output
buffer pool on and off (``BINAS_NATIVE_POOL``), and its real twin (untrained weights: latency does not depend
on them).

    python benchmarks/native_kernels.py [--quick] [--repeats 20] [--out benchmarks/results/native_kernels.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

HERE = Path(__file__).parent
DEFAULT_OUT = HERE / "results" / "native_kernels.json"
#: (c_in, c_out, size) of the network's 1x1 convs, and (channels, size) of its 3x3 depth-wise convs.
POINTWISE = [(16, 16, 32), (48, 16, 32), (64, 32, 32), (32, 32, 16), (128, 64, 16), (64, 64, 8), (256, 64, 8)]
DEPTHWISE = [(16, 32), (32, 16), (64, 8)]


def time_round_robin(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, dict[str, float]]:
    """Median and min wall ms of `repeats` calls of each, one call of each in turn."""
    times: dict[str, list[float]] = {k: [] for k in calls}
    with torch.inference_mode():
        for call in calls.values():
            call()
        for _ in range(repeats):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(1e3 * (time.perf_counter() - start))
    return {k: {"median_ms": statistics.median(v), "min_ms": min(v)} for k, v in times.items()}


def _signs(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.randn(shape, generator=g) >= 0, 1, -1).to(torch.int8)


def layer_rows(batch: int, repeats: int, sizes_scale: int) -> list[dict[str, Any]]:
    from binas.export import IntegerConv2d, native
    from binas.export.integer_conv import onednn_available

    rows = []
    cases = [("pointwise", cin, cout, 1, size) for cin, cout, size in POINTWISE]
    cases += [("depthwise", c, c, 3, size) for c, size in DEPTHWISE]
    for i, (kind, cin, cout, k, size) in enumerate(cases):
        size = max(size // sizes_scale, 2)
        groups = cin if kind == "depthwise" else 1
        signs = _signs((cout, cin // groups, k, k), i)
        x = torch.randn(batch, cin, size, size).contiguous(memory_format=torch.channels_last)
        scale, shift = torch.rand(cout) + 0.1, torch.randn(cout)
        calls: dict[str, Callable[[], Any]] = {
            "fp32": functools.partial(F.conv2d, x, signs.float(), None, 1, k // 2, 1, groups)
        }
        saved = native.MAX_TABLE_BYTES
        variants = {"native-tables": saved, "native-popcount": 0} if kind == "pointwise" else {"native": saved}
        for name, limit in variants.items():
            native.MAX_TABLE_BYTES = limit
            conv = IntegerConv2d(signs, scale, shift, padding=k // 2, groups=groups, engine="native")
            conv._native_conv("out")  # built now, under this table limit
            chained = native.sign_bits(x, 1) if kind == "pointwise" else torch.where(x >= 0, 1, -1).to(torch.int8)
            calls[name] = functools.partial(conv, chained)
            if limit == saved:  # as a chained conv: its output is the sign its 1-bit consumer reads
                signed = IntegerConv2d(signs, scale, shift, padding=k // 2, groups=groups, engine="native")
                signed.output_sign(bits=kind == "depthwise")  # depth-wise feeds a dense conv: bits
                calls[f"{name}-sign-out"] = functools.partial(signed, chained)
        native.MAX_TABLE_BYTES = saved
        if onednn_available():
            onednn = IntegerConv2d(signs, scale, shift, padding=k // 2, groups=groups, engine="onednn")
            calls["onednn"] = functools.partial(onednn, x)
        timed = time_round_robin(calls, repeats)
        fp32 = timed["fp32"]["median_ms"]
        rows.append(
            {
                "kind": kind,
                "c_in": cin,
                "c_out": cout,
                "kernel": k,
                "size": size,
                "batch": batch,
                **{name: {**t, "vs_fp32": t["median_ms"] / fp32} for name, t in timed.items()},
            }
        )
    return rows


def end_to_end(batch: int, repeats: int, channels: int, layers: int, size: int) -> dict[str, Any]:
    from binas.export import deploy
    from binas.genotype import get_genotype
    from binas.nets import Network
    from binas.quant.policy import BinarizationPolicy

    def net(policy: BinarizationPolicy) -> torch.nn.Module:
        torch.manual_seed(0)
        model = Network(get_genotype("darts-v2"), num_classes=10, channels=channels, layers=layers, policy=policy)
        return model.eval()

    real = net(BinarizationPolicy.real()).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    deployed = deploy(net(BinarizationPolicy.strict()), engine="native")
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)

    def with_pool(on: bool) -> Callable[[], Any]:
        def run() -> Any:
            os.environ["BINAS_NATIVE_POOL"] = "1" if on else "0"
            return deployed(x)

        return run

    try:
        timed = time_round_robin(
            {"real": lambda: real(x), "pool": with_pool(True), "no-pool": with_pool(False)}, repeats
        )
    finally:
        os.environ.pop("BINAS_NATIVE_POOL", None)
    real_ms = timed["real"]["median_ms"]
    return {name: {**t, "vs_real": t["median_ms"] / real_ms} for name, t in timed.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small maps, few repeats (seconds; for tests)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    from binas.export import native

    if not native.available():
        raise SystemExit("binas's native kernels are not available on this machine (no C compiler)")
    torch.set_num_threads(1)
    batch, repeats = (4, 2) if args.quick else (64, args.repeats)
    started = time.perf_counter()
    result = {
        "benchmark": "native_kernels",
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["python benchmarks/native_kernels.py", *(sys.argv[1:] if argv is None else argv)]),
        "threads": 1,
        "loadavg_before": list(os.getloadavg()),
        "layers": layer_rows(batch, repeats, 4 if args.quick else 1),
        "end_to_end": end_to_end(batch, repeats, 16 if not args.quick else 8, 5 if not args.quick else 3, 32),
    }
    result["loadavg_after"] = list(os.getloadavg())
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in result["layers"]:
        ratios = {k: round(v["vs_fp32"], 2) for k, v in row.items() if isinstance(v, dict)}
        print(f"{row['kind']:<9} {row['c_in']:>3}->{row['c_out']:<3} {row['size']:>2}x{row['size']:<2} {ratios}")
    print({k: round(v["vs_real"], 3) for k, v in result["end_to_end"].items()})
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
