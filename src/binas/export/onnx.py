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
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
    except ImportError as exc:
        raise BinasError(f"ONNX export needs the onnx extra (pip install 'binas[onnx]'): {exc}") from None
    if check:
        check_onnx(path)
    logger.info("wrote ONNX graph %s (%d bytes)", path, path.stat().st_size)
    return path


def check_onnx(path: str | Path) -> None:
    """Run `onnx.checker` (full check) on an exported file; a warning if `onnx` is not installed."""
    try:
        import onnx
    except ImportError:
        logger.warning("onnx is not installed: %s was not checked (pip install 'binas[onnx]')", path)
        return
    onnx.checker.check_model(str(path), full_check=True)
