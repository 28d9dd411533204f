"""`deploy_model` (`binas deploy`): turn a trained network into its deployment files, checked and timed.

From a training run (its `model.pt`) or a packed file, writes into `OUT_DIR` (default `<run>/deploy/`):

* `model.packed.pt`: one bit per binary weight (`binas.export.save_packed`);
* `model.int8.onnx`: the integer ONNX graph (`ConvInteger` on int8 +-1 values, int8 weights);
* `deploy.json`: sizes against the Mbit estimate, the checks and the timings below.

The deployment form is loaded back from the packed file (`load_deployed`), so what is checked is what ships.
Checks on the test split of the data set the network was trained on: integer sums of every 1-bit x 1-bit
conv equal bit for bit (layer by layer, first batch), top-1 agreement and largest logit difference of the
deployment form (PyTorch engine) and of the ONNX file in ONNX Runtime against the trained network.
Timing: the median latency of the trained network and of the deployment form at batch 1 and 64.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from binas.data import load_dataset
from binas.data.loaders import make_loader
from binas.errors import BinasError, CheckpointError
from binas.export import (
    DeployedNetwork,
    default_engine,
    export_onnx,
    load_deployed,
    load_packed,
    packed_sizes,
    require_engine,
    save_packed,
)
from binas.export.integer_conv import Engine
from binas.export.verify import compare_outputs, integer_sums_equal, onnx_runner
from binas.metrics.complexity import profile_model
from binas.nets.model_file import ModelSpec, load_model, resolve_model_path
from binas.storage.files import write_json

logger = logging.getLogger(__name__)

PACKED_FILE, ONNX_FILE, REPORT_FILE = "model.packed.pt", "model.int8.onnx", "deploy.json"
#: Batch sizes `deploy_model` times (one image, and a batch as in the benchmark).
TIMED_BATCHES = (1, 64)


@dataclass
class DeployResult:
    """What `deploy_model` wrote (`files` by role) and its report (also in `deploy.json`)."""

    out_dir: Path
    files: dict[str, Path]
    report: dict[str, Any] = field(default_factory=dict)


def _load_trained(path: Path) -> tuple[nn.Module, ModelSpec, bool]:
    """(network, spec, is_packed): a model file, or a packed file (its float inference copy)."""
    try:
        model, spec, _ = load_model(path)
        return model.eval(), spec, False
    except CheckpointError as error:
        try:
            model, spec = load_packed(path)
        except CheckpointError:
            raise error from None
        return model, spec, True


def _test_batches(spec: ModelSpec, batch_size: int) -> list[tuple[Tensor, Tensor]]:
    """The test split of the network's data set, in batches (read once; the checks pass over it twice)."""
    data = load_dataset(spec.dataset, "test", data_dir=spec.data_dir, image_size=spec.image_size)
    if data.info.num_classes != spec.num_classes or data.info.in_channels != spec.in_channels:
        raise BinasError(f"the {spec.dataset} test split does not fit the network: cannot check the deployment")
    return list(make_loader(data, batch_size, shuffle=False, seed=0))


def _median_ms(fn: Callable[[Tensor], Any], x: Tensor, repeats: int) -> float:
    with torch.inference_mode():
        fn(x)  # warm-up: kernel selection, weight packing
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _timings(trained: nn.Module, deployed: nn.Module, spec: ModelSpec, repeats: int) -> list[dict[str, Any]]:
    rows = []
    trained = trained.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    for batch in TIMED_BATCHES:
        x = torch.randn(batch, *spec.input_size[1:]).contiguous(memory_format=torch.channels_last)
        t_trained, t_deployed = _median_ms(trained, x, repeats), _median_ms(deployed, x, repeats)
        rows.append(
            {"batch": batch, "trained_ms": t_trained, "deployed_ms": t_deployed, "speedup": t_trained / t_deployed}
        )
    return rows


def _sizes(model: nn.Module, spec: ModelSpec, out: Path, packed: dict[str, Any]) -> dict[str, Any]:
    estimate = profile_model(spec.build(auxiliary=False), spec.input_size).memory_mbit
    bn_mbit = packed["buffer_bits"] / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        float_bytes = export_onnx(model, Path(tmp) / "float.onnx", spec.input_size, check=False).stat().st_size
    onnx_bytes = (out / ONNX_FILE).stat().st_size
    return {
        "estimate_mbit": estimate,
        "bn_statistics_mbit": bn_mbit,
        "packed": packed,
        "packed_over_estimate_plus_bn": packed["file_mbit"] / (estimate + bn_mbit),
        "onnx_int8_bytes": onnx_bytes,
        "onnx_float_bytes": float_bytes,
        "onnx_float_over_int8": float_bytes / onnx_bytes,
    }


def _checks(
    trained: nn.Module, deployed: DeployedNetwork, spec: ModelSpec, onnx_path: Path, batch: int
) -> dict[str, Any]:
    batches = _test_batches(spec, batch)
    layers = integer_sums_equal(trained, deployed, batches[0][0])
    report: dict[str, Any] = {
        "integer_convs": len(layers),
        "integer_sums": sum(c.sums for c in layers),
        "integer_sum_mismatches": sum(c.mismatches for c in layers),
        "deployed_vs_trained": compare_outputs(trained, deployed, batches).to_dict(),
    }
    try:
        runner = onnx_runner(str(onnx_path), threads=torch.get_num_threads())
    except ImportError:
        logger.warning("onnxruntime is not installed: the ONNX file was not run (pip install onnxruntime)")
    else:
        report["onnx_vs_trained"] = compare_outputs(trained, runner, batches).to_dict()
    return report


def deploy_model(
    checkpoint: str | Path,
    out_dir: str | Path | None = None,
    *,
    engine: Engine | None = None,
    verify: bool = True,
    timing: bool = True,
    repeats: int = 10,
    batch_size: int = 256,
) -> DeployResult:
    """Write the deployment files of a trained network (module docstring) and return what was written.

    `checkpoint`: a training run directory, its `model.pt`, or a packed file. `engine`: the integer engine
    of the deployment form (default: `default_engine()`). `verify`/`timing`: run the checks / the latency
    measurement (each reads or runs the network; off for a quick export).
    """
    engine = require_engine(engine or default_engine())
    path = resolve_model_path(checkpoint)
    trained, spec, from_packed = _load_trained(path)
    out = Path(out_dir) if out_dir is not None else path.parent / "deploy"
    out.mkdir(parents=True, exist_ok=True)
    files = {"packed": out / PACKED_FILE, "onnx": out / ONNX_FILE, "report": out / REPORT_FILE}
    if from_packed:
        if path.resolve() != files["packed"].resolve():
            files["packed"].write_bytes(path.read_bytes())
        sizes = packed_sizes(files["packed"])
    else:
        sizes = save_packed(trained, spec, files["packed"])
    deployed, _ = load_deployed(files["packed"], engine=engine)
    export_onnx(deployed, files["onnx"], spec.input_size)
    report: dict[str, Any] = {
        "checkpoint": str(path),
        "engine": engine,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "policy": spec.policy["name"],
        "sizes": _sizes(trained, spec, out, sizes.to_dict()),
    }
    if verify:
        report["checks"] = _checks(trained, deployed, spec, files["onnx"], batch_size)
    if timing:
        report["latency"] = _timings(trained, deployed, spec, repeats)
    write_json(files["report"], report)
    logger.info("wrote the deployment files of %s to %s", path, out)
    return DeployResult(out, files, report)
