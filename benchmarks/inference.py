"""Inference on the CPU (a script, not a test): latency and size of a trained 1-bit network vs its real twin.

Three forms of one genotype's network (darts-v2 by default, C=16, 5 cells, trained briefly on the bundled
digits data with a fixed seed, or the network of an existing `binas train` / `binas run` directory):

* `real`: the real-valued twin (same genotype and size, `train.binary` false);
* `binary-train-form`: the trained 1-bit network as it trains, fake-quantized: each forward computes
  beta * sign(W) from the latent float weights and sign(x) of the binarized inputs, then runs a float conv;
* `binary-inference`: `binas.export.to_inference` of it: plain float convs holding the folded +-beta
  kernels, behind a `BinarySign` where the input is binarized.

For each, the latency of one forward in `torch.inference_mode` at batch 1 (per image) and at a larger batch
(per batch), the median of `--repeats` calls after a warm-up, at each `--image-size`. The variants are timed
round-robin (one call of each in turn), so a change of load on a shared machine hits all of them alike.

Size: float32 state_dict of both nets, the packed 1-bit file of `binas.export.save_packed` with its
`PackedSizes` breakdown, the Mbit estimate of `binas.metrics.complexity` and the ratio packed / estimate.
Where the time goes: `torch.profiler` self CPU time of each variant's largest aten ops at the larger batch.
Accuracy: top-1 of both nets on the test split, and the agreement of the packed model reloaded with
`load_packed` (and of the inference form) with the trained 1-bit network, image by image.

PyTorch has no 1-bit kernels on the CPU: a binary net runs float convs on +-1 values here, so it is not
faster than the real one; the OPs estimate counts what XNOR-popcount kernels would save. The numbers are
reported as measured.

    python benchmarks/inference.py [--quick] [--threads N] [--train-epochs E] [--image-size 16 32]
        [--run-dir RUN_DIR [--real-run-dir RUN_DIR]] [--out benchmarks/results/inference.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

DEFAULT_OUT = Path(__file__).parent / "results" / "inference.json"
VARIANTS = ("real", "binary-train-form", "binary-inference")
#: aten ops of the sign functions (`hard_sign`: sign + eq + add_; `BinarySign` in an ONNX export: ge + where; add_
#: and fill_ also run inside other ops, so a real net shows a little of them) and of the convs.
SIGN_OPS = (
    "aten::sign",
    "aten::eq",
    "aten::add_",
    "aten::where",
    "aten::ge",
    "aten::fill_",
    "aten::neg",
    "aten::ones_like",
)
CONV_OPS = ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward", "aten::thnn_conv2d", "aten::_convolution")
NOTE = (
    "PyTorch has no 1-bit kernels on the CPU: the 1-bit network runs float convolutions on +-1 values "
    "(fake quantization), so it is not faster than its real twin here; its OPs estimate (BOPs/64 + FLOPs) "
    "counts what XNOR-popcount kernels would save, which these latencies do not show. Latencies are medians "
    "of round-robin timed calls on a possibly shared machine: see machine.loadavg_before/after."
)
#: --quick: a network and data small enough for a test (seconds, not minutes).
QUICK = {
    "channels": 4,
    "layers": 3,
    "train_image_size": 8,
    "train_epochs": 1,
    "max_train_samples": 256,
    "repeats": 5,
    "warmup": 1,
    "batch_size": 8,
}


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------- networks


@dataclasses.dataclass
class Net:
    """One network to benchmark: the model (eval mode, CPU), its spec, and where it came from."""

    model: nn.Module
    spec: Any  # binas.nets.model_file.ModelSpec
    source: str
    trained: bool
    train_seconds: float | None = None
    train_top1: float | None = None


def _train(args: argparse.Namespace, binary: bool, run_dir: Path) -> Net:
    from binas.config.schema import DataConfig, RunConfig, SpaceConfig
    from binas.config.train import NetConfig, TrainConfig
    from binas.nets.model_file import load_model
    from binas.workflows.train import train

    cfg = RunConfig(
        seed=args.seed,
        device="cpu",
        num_threads=args.threads,
        data=DataConfig(name="digits", image_size=args.train_image_size, max_train_samples=args.max_train_samples),
        space=SpaceConfig(policy=args.policy),
        train=TrainConfig(
            epochs=args.train_epochs, binary=binary, net=NetConfig(channels=args.channels, layers=args.layers)
        ),
    )
    t0 = time.perf_counter()
    result = train(cfg, args.genotype, run_dir, progress=False)
    seconds = time.perf_counter() - t0
    model, spec, _ = load_model(result.model_path)
    return Net(model, spec, str(run_dir), True, round(seconds, 2), result.top1)


def _model_path(run_dir: str) -> Path:
    """A `binas train` directory (its model.pt), a `binas run` directory (train/model.pt) or a model file."""
    from binas.run_files import MODEL_FILE as MODEL_NAME

    path = Path(run_dir)
    if path.is_dir() and not (path / MODEL_NAME).is_file() and (path / "train" / MODEL_NAME).is_file():
        return path / "train" / MODEL_NAME
    return path


def load_twins(args: argparse.Namespace, work_dir: Path) -> tuple[Net, Net]:
    """(1-bit network, real twin): trained here, or read from --run-dir (and --real-run-dir)."""
    from binas.engine.runtime import set_num_threads
    from binas.errors import ConfigError
    from binas.nets.model_file import ModelSpec, load_model
    from binas.quant.policy import BinarizationPolicy

    if args.run_dir is None:
        binary = _train(args, True, work_dir / "binary")
        real = _train(args, False, work_dir / "real")
        set_num_threads(args.threads)
        return binary, real
    set_num_threads(args.threads)
    model, spec, metrics = load_model(_model_path(args.run_dir))
    if spec.binarization().is_real:
        raise ConfigError(f"{args.run_dir} holds a real-valued network; give the run of a 1-bit one")
    binary = Net(model, spec, str(args.run_dir), True, train_top1=metrics.get("top1"))
    if args.real_run_dir is not None:
        rmodel, rspec, rmetrics = load_model(_model_path(args.real_run_dir))
        if not rspec.binarization().is_real or (rspec.genotype, rspec.channels, rspec.layers) != (
            spec.genotype,
            spec.channels,
            spec.layers,
        ):
            raise ConfigError(
                f"{args.real_run_dir} is not the real twin of {args.run_dir} (same genotype, C, cells, real policy)"
            )
        return binary, Net(rmodel, rspec, str(args.real_run_dir), True, train_top1=rmetrics.get("top1"))
    # an untrained twin: the same latency and size, no accuracy
    rspec = dataclasses.replace(spec, policy=ModelSpec.policy_dict(BinarizationPolicy.real()))
    torch.manual_seed(args.seed)
    return binary, Net(rspec.build(auxiliary=False).eval(), rspec, "untrained real twin of --run-dir", False)


# ---------------------------------------------------------------------------------------------- latency


def _input(batch: int, channels: int, size: int, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, size, size, generator=gen).contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def time_round_robin(models: dict[str, nn.Module], x: Tensor, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of `repeats` forward calls of each model on `x`, one call of each in turn (order rotated)."""
    names = list(models)
    for _ in range(warmup):
        for name in names:
            models[name](x)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            models[name](x)
            times[name].append(time.perf_counter() - t0)
    return times


def _stats(seconds: list[float], batch: int) -> dict[str, Any]:
    q = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else [seconds[0]] * 3
    median = statistics.median(seconds)
    return {
        "median_ms": median * 1e3,
        "per_image_ms": median * 1e3 / batch,
        "min_ms": min(seconds) * 1e3,
        "p25_ms": q[0] * 1e3,
        "p75_ms": q[2] * 1e3,
        "images_per_s": batch / median,
        "repeats": len(seconds),
    }


def measure_latency(models: dict[str, nn.Module], in_channels: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for size in args.image_size:
        for batch in (1, args.batch_size):
            x = _input(batch, in_channels, size, args.seed)
            times = time_round_robin(models, x, args.repeats, args.warmup)
            real = statistics.median(times["real"])
            for name in models:
                rows.append(
                    {
                        "variant": name,
                        "image_size": size,
                        "batch": batch,
                        **_stats(times[name], batch),
                        "vs_real": statistics.median(times[name]) / real,
                    }
                )
    return rows


@torch.inference_mode()
def op_breakdown(models: dict[str, nn.Module], x: Tensor, calls: int = 5, top: int = 6) -> dict[str, Any]:
    """Where each variant's time goes: `torch.profiler` self CPU time of its aten ops, one profile per forward,
    the median over `calls` forwards per op (a median, so a preemption on a busy machine does not land on one op)."""
    from torch.profiler import ProfilerActivity, profile

    out: dict[str, Any] = {
        "image_size": x.shape[-1],
        "batch": x.shape[0],
        "calls": calls,
        "statistic": "median over forwards of each op's self CPU ms",
    }
    for name, model in models.items():
        model(x)
        runs: list[dict[str, tuple[float, int]]] = []
        for _ in range(calls):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                model(x)
            runs.append({e.key: (e.self_cpu_time_total / 1e3, e.count) for e in prof.key_averages()})
        ops = {
            k: (statistics.median(r.get(k, (0.0, 0))[0] for r in runs), max(r.get(k, (0.0, 0))[1] for r in runs))
            for k in set().union(*runs)
        }
        total = statistics.median(sum(v[0] for v in r.values()) for r in runs)
        ranked = sorted(ops.items(), key=lambda kv: kv[1][0], reverse=True)
        out[name] = {
            "self_cpu_ms_per_forward": total,
            "conv_ms_per_forward": sum(ops[k][0] for k in CONV_OPS if k in ops),
            "sign_ops_ms_per_forward": sum(ops[k][0] for k in SIGN_OPS if k in ops),
            "top_ops": [
                {"op": k, "ms_per_forward": ms, "share": ms / total, "calls_per_forward": n}
                for k, (ms, n) in ranked[:top]
            ],
        }
    return out


# ---------------------------------------------------------------------------------------------- sizes


def _state_bytes(model: nn.Module) -> dict[str, int]:
    state = model.state_dict()
    params = dict(model.named_parameters())
    total = sum(t.numel() * t.element_size() for t in state.values())
    return {
        "state_dict_bytes": total,
        "param_bytes": sum(t.numel() * t.element_size() for k, t in state.items() if k in params),
        "buffer_bytes": total - sum(t.numel() * t.element_size() for k, t in state.items() if k in params),
    }


def _saved_bytes(model: nn.Module, path: Path) -> int:
    torch.save(model.state_dict(), path)
    return path.stat().st_size


def measure_sizes(binary: Net, real: Net, packed_path: Path) -> dict[str, Any]:
    from binas.export import save_packed
    from binas.metrics.complexity import profile_model

    packed = save_packed(binary.model, binary.spec, packed_path)
    bprof = profile_model(binary.model, binary.spec.input_size)
    rprof = profile_model(real.model, real.spec.input_size)
    real_file = _saved_bytes(real.model, packed_path.with_name("real_state_dict.pt"))
    binary_file = _saved_bytes(binary.model, packed_path.with_name("binary_state_dict.pt"))
    estimate_bits = bprof.memory_mbit * 1e6
    return {
        "real": {
            **_state_bytes(real.model),
            "torch_save_bytes": real_file,
            "params": rprof.params,
            "estimate_mbit": rprof.memory_mbit,
        },
        "binary": {
            **_state_bytes(binary.model),
            "torch_save_bytes": binary_file,
            "params": bprof.params,
            "estimate_mbit": bprof.memory_mbit,
        },
        "packed": packed.to_dict(),
        "packed_file_over_estimate": packed.file_mbit / bprof.memory_mbit,
        "packed_payload_over_estimate": packed.payload_mbit / bprof.memory_mbit,
        "packed_estimate_part_over_estimate": packed.estimate_mbit / bprof.memory_mbit,
        "overhead_bits": {  # what the file holds beyond the estimate, in bits
            "bn_running_stats": packed.buffer_bits,
            "byte_padding": packed.padding_bits,
            "container_and_index": packed.file_bytes * 8 - int(round(packed.payload_mbit * 1e6)),
            "estimate_minus_packed_estimate_part": int(round(estimate_bits - packed.estimate_mbit * 1e6)),
        },
        "real_torch_save_over_packed_file": real_file / packed.file_bytes,
        "real_estimate_over_binary_estimate": rprof.memory_mbit / bprof.memory_mbit,
    }


# ---------------------------------------------------------------------------------------------- accuracy


@torch.inference_mode()
def _logits(model: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    return torch.cat(
        [
            model(images[i : i + batch_size].contiguous(memory_format=torch.channels_last))
            for i in range(0, len(images), batch_size)
        ]
    )


def measure_accuracy(binary: Net, real: Net, forms: dict[str, nn.Module], packed_path: Path) -> dict[str, Any]:
    """Top-1 of each net on its test split, and how the packed reload / inference form agree with the 1-bit net."""
    from binas.data import load_dataset
    from binas.errors import DataError
    from binas.export import load_packed

    spec = binary.spec
    try:
        data = load_dataset(spec.dataset, "test", data_dir=spec.data_dir, image_size=spec.image_size)
    except DataError as exc:
        return {"skipped": f"test split unavailable: {exc}"}
    images = torch.stack([data[i][0] for i in range(len(data))])
    labels = torch.as_tensor([int(data[i][1]) for i in range(len(data))])
    packed, _ = load_packed(packed_path)
    packed = packed.to(memory_format=torch.channels_last)
    logits = {
        "binary": _logits(binary.model, images),
        "binary-inference": _logits(forms["binary-inference"], images),
        "packed-reload": _logits(packed, images),
    }
    if real.trained:
        logits["real"] = _logits(real.model, images)
    preds = {k: v.argmax(1) for k, v in logits.items()}
    out: dict[str, Any] = {
        "dataset": spec.dataset,
        "split": "test",
        "images": len(labels),
        "image_size": spec.image_size,
        "top1": {k: 100.0 * (p == labels).float().mean().item() for k, p in preds.items()},
    }
    for k in ("binary-inference", "packed-reload"):
        out[f"{k}_vs_binary"] = {
            "prediction_agreement_pct": 100.0 * (preds[k] == preds["binary"]).float().mean().item(),
            "logits_bitwise_equal": bool(torch.equal(logits[k], logits["binary"])),
            "max_abs_logit_diff": (logits[k] - logits["binary"]).abs().max().item(),
        }
    return out


# ---------------------------------------------------------------------------------------------- report


def format_report(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["size"]
    lines = [
        f"binas inference benchmark: {result['network']['genotype']}, C={result['network']['channels']}, "
        f"{result['network']['layers']} cells, policy {result['network']['policy']}",
        f"torch {m['torch']}, {m['torch_threads']} thread(s) of {m['cpu_count']} CPUs, "
        f"load average {m['loadavg_before']} -> {m['loadavg_after']}",
        *([f"load: {m['load_note']}"] if "load_note" in m else []),
        "",
        f"{'variant':<19}{'size':>5}{'batch':>6}{'median ms':>11}{'ms/image':>10}{'p25-p75 ms':>17}"
        f"{'img/s':>9}{'x real':>8}",
    ]
    for r in result["latency"]:
        lines.append(
            f"{r['variant']:<19}{r['image_size']:>5}{r['batch']:>6}{r['median_ms']:>11.3f}"
            f"{r['per_image_ms']:>10.3f}{r['p25_ms']:>8.2f}-{r['p75_ms']:<8.2f}{r['images_per_s']:>9.0f}"
            f"{r['vs_real']:>8.2f}"
        )
    b = result["op_breakdown"]
    lines += [
        "",
        f"largest ops per forward (torch.profiler, self CPU, batch {b['batch']}, {b['image_size']}x{b['image_size']})",
    ]
    for name in VARIANTS:
        ops = ", ".join(
            f"{o['op'].removeprefix('aten::')} {o['ms_per_forward']:.1f} ms ({o['share']:.0%})"
            for o in b[name]["top_ops"][:4]
        )
        v = b[name]
        lines.append(
            f"  {name:<18} {v['self_cpu_ms_per_forward']:7.1f} ms (convs {v['conv_ms_per_forward']:.1f}, "
            f"sign ops {v['sign_ops_ms_per_forward']:.1f}): {ops}"
        )
    p = s["packed"]
    lines += ["", "size"]
    for name, label in (("real", "real"), ("binary", "1-bit")):
        n = s[name]
        lines.append(
            f"  {label:<9} state_dict {n['state_dict_bytes']:>10,} B   "
            f"torch.save {n['torch_save_bytes']:>10,} B   estimate {n['estimate_mbit']:.4f} Mbit"
        )
    lines += [
        f"  packed    file {p['file_bytes']:,} B = {p['file_mbit']:.4f} Mbit; payload "
        f"{p['payload_mbit']:.4f} Mbit = {p['binary_weight_bits']:,} weight bits + "
        f"{p['padding_bits']:,} padding + "
        f"{p['scale_bits'] // 32:,} scales + {p['real_param_bits'] // 32:,} real params + "
        f"{p['buffer_bits'] // 32:,} BN statistics",
        f"  packed / estimate: file {s['packed_file_over_estimate']:.2f}x, payload "
        f"{s['packed_payload_over_estimate']:.2f}x, counted part {s['packed_estimate_part_over_estimate']:.3f}x;"
        f" real torch.save / packed file {s['real_torch_save_over_packed_file']:.1f}x",
    ]
    acc = result["accuracy"]
    if "top1" in acc:
        lines += [
            "",
            f"top-1 on {acc['dataset']} {acc['split']} ({acc['images']} images): "
            + ", ".join(f"{k} {v:.2f}" for k, v in acc["top1"].items()),
        ]
        for k in ("packed-reload", "binary-inference"):
            a = acc[f"{k}_vs_binary"]
            lines.append(
                f"  {k} vs trained 1-bit: {a['prediction_agreement_pct']:.2f} % same predictions, "
                f"logits bitwise equal {a['logits_bitwise_equal']}, max |diff| {a['max_abs_logit_diff']:.3g}"
            )
    elif "skipped" in acc:
        lines += ["", f"accuracy: {acc['skipped']}"]
    lines += ["", "note: " + NOTE]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny network, 1 epoch, few repeats (a smoke test)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--train-epochs", type=int, help="epochs per training step (default 8; --quick 1)")
    p.add_argument("--genotype", default="darts-v2", help="zoo name or genotype.json (default darts-v2)")
    p.add_argument("--channels", type=int, help="initial channels C (default 16; --quick 4)")
    p.add_argument("--layers", type=int, help="cells (default 5; --quick 3)")
    p.add_argument("--policy", choices=["released", "strict"], default="released", help="binarization policy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--run-dir",
        help="benchmark the 1-bit network of this `binas train` / `binas run` directory "
        "(or model.pt) instead of training one",
    )
    p.add_argument("--real-run-dir", help="with --run-dir: its trained real twin (default: an untrained one)")
    p.add_argument(
        "--image-size",
        type=int,
        nargs="+",
        help="input sizes timed (default: the training size and 32; --quick: the training size)",
    )
    p.add_argument("--batch-size", type=int, help="the larger batch timed (default 64; --quick 8)")
    p.add_argument("--repeats", type=int, help="timed calls per case (default 30; --quick 5)")
    p.add_argument("--warmup", type=int, help="untimed calls per case first (default 3; --quick 1)")
    p.add_argument("--work-dir", help="keep the training runs and packed file here (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    args = p.parse_args(argv)
    defaults = (
        QUICK
        if args.quick
        else {
            "channels": 16,
            "layers": 5,
            "train_image_size": 16,
            "train_epochs": 8,
            "max_train_samples": None,
            "repeats": 30,
            "warmup": 3,
            "batch_size": 64,
        }
    )
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.run_dir is not None:
        args.train_image_size = None  # the run's own
    if args.real_run_dir is not None and args.run_dir is None:
        p.error("--real-run-dir needs --run-dir")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be positive")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    from binas.export import to_inference

    t_start = time.perf_counter()
    load_before = _loadavg()
    with tempfile.TemporaryDirectory(prefix="binas-inference-") as tmp:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        binary, real = load_twins(args, work)
        spec = binary.spec
        if args.image_size is None:
            args.image_size = [spec.image_size] if args.quick else sorted({spec.image_size, 32})
        for net in (binary, real):  # the library's CPU layout (binas.engine.runtime.preferred_memory_format)
            net.model = net.model.eval().to(memory_format=torch.channels_last)
        forms = {"real": real.model, "binary-train-form": binary.model, "binary-inference": to_inference(binary.model)}
        packed_path = work / "model.packed.pt"
        size = measure_sizes(binary, real, packed_path)
        accuracy = measure_accuracy(binary, real, forms, packed_path)
        # training turns on torch.use_deterministic_algorithms, which on the CPU fills every new tensor with NaN
        # (torch.utils.deterministic.fill_uninitialized_memory): about a tenth of a forward here; a deployed
        # network does not pay it, so time with it off
        deterministic = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
        torch.use_deterministic_algorithms(False)
        try:
            latency = measure_latency(forms, spec.in_channels, args)
            x = _input(args.batch_size, spec.in_channels, max(args.image_size), args.seed)
            breakdown = op_breakdown(forms, x)
        finally:
            torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
    from binas.genotype import Genotype
    from binas.metrics.complexity import profile_model

    ops = {
        f"{name}@{s}": profile_model(net.model, (1, spec.in_channels, s, s)).to_dict()
        for s in args.image_size
        for name, net in (("real", real), ("binary", binary))
    }
    machine = {**machine_info(), "loadavg_before": load_before, "loadavg_after": _loadavg()}
    busiest = max((m[0] for m in (machine["loadavg_before"], machine["loadavg_after"]) if m), default=0.0)
    if busiest > machine["torch_threads"] and busiest > 0.5 * (os.cpu_count() or 1):
        machine["load_note"] = (
            f"1-minute load average up to {busiest} on {os.cpu_count()} CPUs: other processes "
            "shared the cores during the run, so latencies are inflated and noisy (see the "
            "p25-p75 spread); ratios between variants, timed round-robin, are more reliable "
            "than absolute times"
        )
    return {
        "benchmark": "inference",
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if args.command is None else args.command,
        "note": NOTE,
        "machine": machine,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "command")},
        "network": {
            "genotype": args.genotype if args.run_dir is None else Genotype.from_dict(spec.genotype).archid,
            "channels": spec.channels,
            "layers": spec.layers,
            "family": spec.family,
            "policy": spec.policy["name"],
            "train_image_size": spec.image_size,
            "dataset": spec.dataset,
            "binary": {
                "source": binary.source,
                "trained": binary.trained,
                "train_seconds": binary.train_seconds,
                "train_top1": binary.train_top1,
            },
            "real": {
                "source": real.source,
                "trained": real.trained,
                "train_seconds": real.train_seconds,
                "train_top1": real.train_top1,
            },
        },
        "memory_format": "channels_last",
        "deterministic_algorithms_while_timing": False,
        "latency": latency,
        "op_breakdown": breakdown,
        "profile": ops,
        "size": size,
        "accuracy": accuracy,
        "seconds": round(time.perf_counter() - t_start, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.command = None if argv is None else "python benchmarks/inference.py " + " ".join(argv)
    result = run(args)
    print(format_report(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
