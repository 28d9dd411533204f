"""Deployment on the CPU (a script, not a test): how fast and small a trained 1-bit network runs once deployed.

One genotype's network (darts-v2 by default, C=16, 5 cells) is trained briefly on the bundled digits data
with a fixed seed: real, and 1-bit under each `--policy` (`strict`: every cell conv 1-bit x 1-bit;
`released`: binary weights everywhere, binary inputs only into the point-wise convs). For each 1-bit
network these forms are timed side by side, round-robin (one call of each in turn, so a change of load on
a shared machine hits all alike), at batch 1 and `--batch-size`, on one thread and on all threads:

* `real`: the real twin in fp32, channels_last, as trained (BatchNorm as separate ops);
* `real-folded`: the real twin's deployment form (`binas.export.deploy`: BatchNorm folded into the convs);
* `train-form`: the 1-bit network as it trains (beta * sign(W) and sign(x) computed every call);
* `float-inference`: `binas.export.to_inference`: float convs on the folded +-beta kernels;
* `deployed-native`: `binas.export.deploy` on binas's native kernels (the default where a C compiler is
  found): XNOR-popcount / byte tables on sign bits for dense convs, int8 lanes for depth-wise ones, signs
  passed between chained 1-bit convs as bits or int8;
* `deployed-onednn`: the same deployment form with int8 +-1 convs and int32 sums on PyTorch's oneDNN engine;
* `deployed-reference`: the same network, its integer sums computed by float convs;
* `onnx-int8-ort` / `onnx-float-ort`: the int8 ONNX graph (`ConvInteger`) and the float one in ONNX Runtime.

Also: where the deployed network's time goes (per module kind, hooks at batch `--batch-size`, one thread),
sizes (packed file against the Mbit estimate plus the BatchNorm statistics; int8 against float ONNX),
top-1 agreement of every deployed form with the trained network on the digits test split, the bit-equality
of the integer sums layer by layer, and the CPU's instruction-set flags.

    python benchmarks/deployment.py [--quick] [--policy strict released] [--train-epochs 8]
        [--image-size 32] [--batch-size 64] [--repeats N] [--out benchmarks/results/deployment.json] [--readme]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from readme_block import write_block
from torch import Tensor, nn

HERE = Path(__file__).parent
DEFAULT_OUT = HERE / "results" / "deployment.json"
README = HERE.parent / "README.md"
README_BEGIN, README_END = "<!-- deployment:begin -->", "<!-- deployment:end -->"
FORMS = (
    "real",
    "real-folded",
    "train-form",
    "float-inference",
    "deployed-native",
    "deployed-onednn",
    "deployed-reference",
    "onnx-int8-ort",
    "onnx-float-ort",
)
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile")
#: --quick: small enough for a test.
QUICK = {"channels": 4, "layers": 3, "train_epochs": 1, "max_train_samples": 128, "repeats": 3, "batch_size": 8}


# ------------------------------------------------------------------------------------------------ machine


def machine_info() -> dict[str, Any]:
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    onednn = re.search(r"(?:oneDNN|MKL-DNN) v[\d.]+", torch.__config__.show())
    info: dict[str, Any] = {
        "cpu": model,
        "isa_flags": {f: f in flags for f in ISA_FLAGS},
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn": onednn.group(0).replace("MKL-DNN", "oneDNN") if onednn else None,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "native_kernels": _native_build(),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def _native_build() -> dict[str, Any]:
    """How binas's native kernels were built here (None: not available)."""
    import subprocess

    from binas.export import native

    cc = native._compiler()
    if cc is None or not native.available():
        return {"available": False}
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()
    return {"available": True, "compiler": version[0] if version else cc, "flags": " ".join(native._FLAGS)}


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ----------------------------------------------------------------------------------------------- networks


def train_network(args: argparse.Namespace, policy: str, run_dir: Path) -> tuple[nn.Module, Any, float]:
    """Train darts-v2 at the benchmark's size on digits (policy `real` for the twin); (model, spec, seconds)."""
    from binas.config.schema import DataConfig, RunConfig, SpaceConfig
    from binas.config.train import NetConfig, TrainConfig
    from binas.nets.model_file import load_model
    from binas.run_files import MODEL_FILE
    from binas.workflows.train import train

    if (run_dir / MODEL_FILE).is_file():  # a finished run of an earlier call with the same --work-dir
        model, spec, metrics = load_model(run_dir / MODEL_FILE)
        return model.eval(), spec, float(metrics.get("train_seconds", 0.0))
    binary = policy != "real"
    cfg = RunConfig(
        seed=args.seed,
        device="cpu",
        num_threads=1,
        data=DataConfig(name="digits", image_size=args.train_image_size, max_train_samples=args.max_train_samples),
        space=SpaceConfig(policy=policy if binary else "released"),
        train=TrainConfig(
            epochs=args.train_epochs, binary=binary, net=NetConfig(channels=args.channels, layers=args.layers)
        ),
    )
    start = time.perf_counter()
    result = train(cfg, args.genotype, run_dir, progress=False)
    model, spec, _ = load_model(result.model_path)
    return model.eval(), spec, time.perf_counter() - start


# ----------------------------------------------------------------------------------------------- latency


class OrtForm:
    """An ONNX file in ONNX Runtime as a callable on tensors, with a settable thread count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.threads = 0
        self.run: Callable[[Tensor], Tensor] | None = None

    def set_threads(self, threads: int) -> None:
        from binas.export.verify import onnx_runner

        self.threads, self.run = threads, onnx_runner(str(self.path), threads=threads)

    def __call__(self, x: Tensor) -> Tensor:
        assert self.run is not None
        return self.run(x)


def time_round_robin(forms: dict[str, Callable[[Tensor], Any]], x: Tensor, repeats: int) -> dict[str, list[float]]:
    """Wall seconds of `repeats` calls of each form on `x`, one call of each in turn (order rotated)."""
    names = list(forms)
    times: dict[str, list[float]] = {n: [] for n in names}
    with torch.inference_mode():
        for name in names:  # warm-up: kernel choice, weight packing, ORT's first run
            forms[name](x)
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                start = time.perf_counter()
                forms[name](x)
                times[name].append(time.perf_counter() - start)
    return times


def measure_latency(
    forms: dict[str, Callable[[Tensor], Any]], in_channels: int, args: argparse.Namespace
) -> list[dict[str, Any]]:
    rows = []
    all_threads = os.cpu_count() or 1
    for threads in sorted({1, all_threads}):
        torch.set_num_threads(threads)
        for form in forms.values():
            if isinstance(form, OrtForm):
                form.set_threads(threads)
        for size in args.image_size:
            for batch in (1, args.batch_size):
                x = torch.randn(batch, in_channels, size, size).contiguous(memory_format=torch.channels_last)
                repeats = args.repeats if batch > 1 else args.repeats * 4
                times = time_round_robin(forms, x, repeats)
                real = statistics.median(times["real"])
                for name, seconds in times.items():
                    median = statistics.median(seconds)
                    rows.append(
                        {
                            "form": name,
                            "threads": threads,
                            "image_size": size,
                            "batch": batch,
                            "median_ms": 1e3 * median,
                            "min_ms": 1e3 * min(seconds),
                            "per_image_ms": 1e3 * median / batch,
                            "vs_real": median / real,
                            "repeats": len(seconds),
                        }
                    )
    torch.set_num_threads(1)
    return rows


def time_by_module_kind(model: nn.Module, x: Tensor, calls: int) -> dict[str, Any]:
    """Where a deployed network's time goes: wall ms per forward in each kind of leaf module (forward hooks),
    in the sign quantize step of the integer convs, and the rest (sums, concatenations, pooling' glue)."""
    import binas.export.integer_conv as integer_conv
    import binas.export.native as native

    totals: dict[str, float] = {}
    starts: dict[int, float] = {}

    def pre(module: nn.Module, _args: Any) -> None:
        starts[id(module)] = time.perf_counter()

    def post(module: nn.Module, _args: Any, _out: Any) -> None:
        kind = type(module).__name__
        totals[kind] = totals.get(kind, 0.0) + time.perf_counter() - starts.pop(id(module))

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_pre_hook(pre) for m in leaves] + [m.register_forward_hook(post) for m in leaves]
    quantize = [0.0]
    patched = [(integer_conv, "sign_to_uint8"), (native, "sign_bits")]
    originals = [getattr(module, name) for module, name in patched]

    def timed(original: Callable[..., Tensor]) -> Callable[..., Tensor]:
        def run(*args: Any) -> Tensor:
            start = time.perf_counter()
            out = original(*args)
            quantize[0] += time.perf_counter() - start
            return out

        return run

    for (module, name), original in zip(patched, originals):
        setattr(module, name, timed(original))
    try:
        with torch.inference_mode():
            model(x)
            totals.clear()
            quantize[0] = 0.0
            start = time.perf_counter()
            for _ in range(calls):
                model(x)
            total = (time.perf_counter() - start) / calls
    finally:
        for (module, name), original in zip(patched, originals):
            setattr(module, name, original)
        for hook in hooks:
            hook.remove()
    per_kind = {k: 1e3 * v / calls for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
    in_modules = sum(per_kind.values())
    return {
        "batch": x.shape[0],
        "image_size": x.shape[-1],
        "total_ms": 1e3 * total,
        "ms_by_module_kind": per_kind,
        "sign_quantize_ms": 1e3 * quantize[0] / calls,  # signing float inputs: part of IntegerConv2d's time
        "outside_modules_ms": 1e3 * total - in_modules,  # node sums, concatenations, slicing
        "share_by_module_kind": {k: v / (1e3 * total) for k, v in per_kind.items()},
    }


# ------------------------------------------------------------------------------------------- one network


def _state_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def benchmark_policy(
    args: argparse.Namespace, policy: str, real: nn.Module, work: Path, seconds_real: float
) -> dict[str, Any]:
    from binas.export import deploy, engine_available, export_onnx, load_deployed, save_packed, to_inference
    from binas.export.verify import compare_outputs, integer_sums_equal, onnx_runner
    from binas.metrics.complexity import profile_model

    binary, spec, seconds = train_network(args, policy, work / policy)
    torch.set_num_threads(1)
    packed_path = work / f"{policy}.packed.pt"
    packed = save_packed(binary, spec, packed_path)
    engines = [e for e in ("native", "onednn") if engine_available(e)]
    # what ships: straight from the packed file, on each engine this machine has
    deployed = {f"deployed-{e}": load_deployed(packed_path, engine=e)[0] for e in engines}
    main_form = f"deployed-{engines[0]}"  # the default engine's
    reference = deploy(binary, engine="reference")
    int8_path = export_onnx(deployed[main_form], work / f"{policy}.int8.onnx", spec.input_size)
    float_path = export_onnx(binary, work / f"{policy}.float.onnx", spec.input_size)
    forms: dict[str, Callable[[Tensor], Any]] = {
        "real": real.to(memory_format=torch.channels_last),  # type: ignore[call-overload]
        "real-folded": deploy(real),
        "train-form": binary.to(memory_format=torch.channels_last),  # type: ignore[call-overload]
        "float-inference": to_inference(binary).to(memory_format=torch.channels_last),  # type: ignore[call-overload]
        **deployed,
        "deployed-reference": reference,
        "onnx-int8-ort": OrtForm(int8_path),
        "onnx-float-ort": OrtForm(float_path),
    }
    latency = measure_latency(forms, spec.in_channels, args)
    size = max(args.image_size)
    x = torch.randn(args.batch_size, spec.in_channels, size, size).contiguous(memory_format=torch.channels_last)
    breakdown = {
        **{name: time_by_module_kind(form, x, args.repeats) for name, form in deployed.items()},
        "real-folded": time_by_module_kind(forms["real-folded"], x, args.repeats),  # type: ignore[arg-type]
    }
    # accuracy on the digits test split, at the training size
    from binas.data import load_dataset
    from binas.data.loaders import make_loader

    data = load_dataset("digits", "test", image_size=spec.image_size)
    batches = list(make_loader(data, 256, shuffle=False, seed=0))
    layers = [c for form in deployed.values() for c in integer_sums_equal(binary, form, batches[0][0])]
    agreement = {
        **{name: compare_outputs(binary, form, batches).to_dict() for name, form in deployed.items()},
        "deployed-reference": compare_outputs(binary, reference, batches).to_dict(),
        "onnx-int8-ort": compare_outputs(binary, onnx_runner(str(int8_path), threads=1), batches).to_dict(),
        "real": compare_outputs(binary, real, batches).to_dict(),
    }
    estimate = profile_model(spec.build(auxiliary=False), spec.input_size).memory_mbit
    bn = packed.buffer_bits / 1e6
    return {
        "policy": policy,
        "default_form": main_form,
        "train_seconds": round(seconds, 1),
        "real_train_seconds": round(seconds_real, 1),
        "latency": latency,
        "time_by_module_kind": breakdown,
        "size": {
            "estimate_mbit": estimate,
            "bn_statistics_mbit": bn,
            "packed": packed.to_dict(),
            "packed_over_estimate_plus_bn": packed.file_mbit / (estimate + bn),
            "onnx_int8_bytes": int8_path.stat().st_size,
            "onnx_float_bytes": float_path.stat().st_size,
            "onnx_float_over_int8": float_path.stat().st_size / int8_path.stat().st_size,
            "real_fp32_state_bytes": _state_bytes(real),
        },
        "accuracy": {
            "images": len(data),
            "integer_convs": len(layers) // len(deployed),
            "integer_sums_checked_on": list(deployed),
            "integer_sums": sum(c.sums for c in layers),
            "integer_sum_mismatches": sum(c.mismatches for c in layers),
            "vs_trained_1bit": agreement,
        },
    }


# ------------------------------------------------------------------------------------------------ report


def _row(result: dict[str, Any], form: str, threads: int, batch: int, size: int) -> dict[str, Any] | None:
    for row in result["latency"]:
        if (row["form"], row["threads"], row["batch"], row["image_size"]) == (form, threads, batch, size):
            return row
    return None


def markdown(result: dict[str, Any]) -> str:
    """The README block: latency vs the real twin, sizes and agreement per policy."""
    settings = result["settings"]
    size, batch = max(settings["image_size"]), settings["batch_size"]
    threads = sorted({r["threads"] for p in result["policies"] for r in p["latency"]})
    machine = result["machine"]
    isa = ", ".join(f for f, on in machine["isa_flags"].items() if on) or "none of " + ", ".join(ISA_FLAGS)
    lines = [
        f"Measured {result['date']} on {machine['cpu']} ({machine['cpu_count']} cores; ISA: {isa}; PyTorch "
        f"{machine['torch']}, {machine['onednn']}, ONNX Runtime {machine['onnxruntime']}), `{result['command']}`. "
        f"darts-v2, C={settings['channels']}, {settings['layers']} cells, {size}x{size} inputs; latency as a "
        "multiple of the real twin's fp32 channels_last latency (median of round-robin calls, lower is faster).",
        "",
        "| policy | form | " + " | ".join(f"batch {b}, {t} thr" for t in threads for b in (1, batch)) + " |",
        "|---|---|" + "---|" * (2 * len(threads)),
    ]
    for p in result["policies"]:
        for form in FORMS:
            cells = []
            for t in threads:
                for b in (1, batch):
                    row = _row(p, form, t, b, size)
                    cells.append(f"{row['vs_real']:.2f}" if row else "-")
            lines.append(f"| {p['policy']} | {form} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| policy | packed file / (estimate + BN stats) | float ONNX / int8 ONNX | top-1 agreement "
        "(native, oneDNN, int8 ONNX) | integer sums equal (both engines) | time in real-activation convs |",
        "|---|---|---|---|---|---|",
    ]
    for p in result["policies"]:
        s, a = p["size"], p["accuracy"]
        shares = p["time_by_module_kind"][p.get("default_form", "deployed-onednn")]["share_by_module_kind"]
        agree = a["vs_trained_1bit"]
        pct = ", ".join(
            f"{agree[f]['agreement_pct']:.1f} %"
            for f in ("deployed-native", "deployed-onednn", "onnx-int8-ort")
            if f in agree
        )
        lines.append(
            f"| {p['policy']} | {s['packed']['file_bytes']:,} B = {s['packed_over_estimate_plus_bn']:.3f}x "
            f"({s['estimate_mbit']:.3f} + {s['bn_statistics_mbit']:.3f} Mbit) | "
            f"{s['onnx_float_over_int8']:.2f}x ({s['onnx_int8_bytes']:,} B) | "
            f"{pct} of {a['images']} | {a['integer_sums'] - a['integer_sum_mismatches']:,} / {a['integer_sums']:,} | "
            f"{100 * shares.get('SignWeightConv2d', 0.0):.0f} % |"
        )
    return "\n".join(lines)


def update_readme(result: dict[str, Any], readme: Path = README) -> None:
    write_block(readme, README_BEGIN, README_END, markdown(result))


# -------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny network and data (seconds; for tests)")
    p.add_argument("--policy", nargs="+", default=["strict", "released"], choices=["strict", "released"])
    p.add_argument("--genotype", default="darts-v2")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--train-epochs", type=int, default=8)
    p.add_argument("--train-image-size", type=int, default=16)
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--image-size", type=int, nargs="+", default=[32])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=15, help="timed calls per form at the large batch (4x at batch 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, help="where the training runs go (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--readme", action="store_true", help="rewrite README.md's block from --out (no new runs)")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
        args.image_size, args.train_image_size = [8], 8
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.readme:
        result = json.loads(args.out.read_text())
        update_readme(result)
        return result
    torch.set_num_threads(1)
    started = time.perf_counter()
    load_before = _loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        real, _, seconds_real = train_network(args, "real", work / "real")
        policies = [benchmark_policy(args, policy, real, work, seconds_real) for policy in args.policy]
    command = " ".join(["python benchmarks/deployment.py", *(sys.argv[1:] if argv is None else argv)])
    result = {
        "benchmark": "deployment",
        "date": time.strftime("%Y-%m-%d"),
        "command": command,
        "machine": {**machine_info(), "loadavg_before": load_before, "loadavg_after": _loadavg()},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "policies": policies,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
