"""ONNX export of a trained network: the float inference copy, or the integer deployment form.

`form="float"`: `to_inference(model)`, binary weights folded to +-beta float kernels, the sign as
`GreaterOrEqual` + `Where`. `form="int8"`: `deploy(model)`, each 1-bit x 1-bit conv as the sign cast to int8,
`ConvInteger` with int8 +-1 weights (int32 accumulation), then the folded scale and shift; each binary-weight
conv on real inputs as `DequantizeLinear` of its int8 signs into a float `Conv`. The int8 graph stores 8 bits
per binary weight instead of 32 and runs integer kernels in ONNX Runtime.
"""

from __future__ import annotations

import copy as copy_module
import logging
import warnings
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from binas.errors import BinasError
from binas.export.deploy import DeployedNetwork, deploy
from binas.export.inference import to_inference
from binas.storage.files import atomic_open

logger = logging.getLogger(__name__)

#: ONNX opset of the exported graph: 17 has every op a DARTS network needs and is widely supported.
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "images", "logits"
OnnxForm = Literal["float", "int8"]
ONNX_FORMS: tuple[OnnxForm, ...] = ("float", "int8")


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_size: tuple[int, int, int, int],
    *,
    opset: int = ONNX_OPSET,
    check: bool = True,
    dtype: torch.dtype = torch.float32,
    form: OnnxForm = "float",
) -> Path:
    """Write `model` as ONNX (CPU, dynamic batch) in the given `form` (module docstring) and, if `onnx` is
    installed and `check`, validate the file with `onnx.checker` (full check: types and shapes). `dtype`
    float64 (float form only) gives a graph whose outputs can be compared with the model's without float32
    rounding flipping signs. A `DeployedNetwork` (e.g. from `load_deployed`) is exported in the int8 form."""
    if form not in ONNX_FORMS:
        raise ValueError(f"unknown ONNX form {form!r}; choose one of: {', '.join(ONNX_FORMS)}")
    if isinstance(model, DeployedNetwork):
        form = "int8"
    if form == "int8" and dtype != torch.float32:
        raise ValueError("the int8 ONNX form has float32 inputs and outputs")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    copy: nn.Module
    if form == "int8":
        copy = copy_module.deepcopy(model) if isinstance(model, DeployedNetwork) else deploy(model)
    else:
        copy = to_inference(model).cpu()
    # torch's stubs omit `Module.to`'s documented `memory_format` keyword
    copy = copy.to(dtype=dtype, memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    dummy = torch.zeros(input_size, dtype=dtype)
    try:  # the TorchScript exporter: no extra package (the torch.export-based one needs onnxscript)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=DeprecationWarning)  # the legacy exporter's notice
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)  # the input-shape check
            torch.onnx.export(
                copy,
                (dummy,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=False,
                dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch"}},
            )
    except ImportError as exc:
        raise BinasError(f"ONNX export needs the onnx extra (pip install 'binas[onnx]'): {exc}") from None
    compact_graph(path)
    if check:
        check_onnx(path)
    logger.debug("wrote ONNX graph %s (%d bytes)", path, path.stat().st_size)
    return path


def compact_graph(path: str | Path) -> None:
    """Make the exported file small, in place: shared constants, short names.

    The exporter writes one `Constant` node per constant per call site (thousands in a DARTS network) and
    names every value after its module path (`/net/cells.0/ops.1/.../Where_output_0`); in the int8 graph
    they take more bytes than the weights. Constants with equal values become one initializer, internal
    values and initializers get short ids and nodes lose their names. The graph's input and output keep
    their names; nothing else refers to the internal ones. Needs `onnx` (absent: the file is left as is).
    """
    try:
        import onnx
    except ImportError:
        return
    model = onnx.load(str(path))
    graph = model.graph
    kept = {v.name for v in graph.input} | {v.name for v in graph.output}
    short: dict[str, str] = {}

    def rename(name: str) -> str:
        if not name or name in kept:
            return name
        return short.setdefault(name, f"v{len(short)}")

    by_value: dict[bytes, str] = {}
    nodes = []
    for node in graph.node:
        value = node.attribute[0].t if node.op_type == "Constant" and len(node.attribute) == 1 else None
        if value is None or node.attribute[0].name != "value" or node.output[0] in kept:
            nodes.append(node)
            continue
        key = value.SerializeToString()
        if key not in by_value:
            by_value[key] = node.output[0]
            value.name = node.output[0]
            graph.initializer.append(value)
        else:
            short[node.output[0]] = rename(by_value[key])
    del graph.node[:]
    graph.node.extend(nodes)
    for init in graph.initializer:
        init.name = rename(init.name)
    for node in graph.node:
        node.name = ""
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    del graph.value_info[:]
    with atomic_open(path, "wb") as handle:
        handle.write(model.SerializeToString())


def check_onnx(path: str | Path) -> None:
    """Run `onnx.checker` (full check) on an exported file; a warning if `onnx` is not installed."""
    try:
        import onnx
    except ImportError:
        logger.warning("onnx is not installed: %s was not checked (pip install 'binas[onnx]')", path)
        return
    onnx.checker.check_model(str(path), full_check=True)
