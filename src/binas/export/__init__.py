"""Deploying a trained network: an inference copy with folded binary weights, ONNX, and a 1-bit packed file.

`to_inference(model)` replaces every `QuantConv2d` by a plain conv whose weight is the kernel the
trained conv actually uses (beta * sign(W) for binary weights) behind a `BinarySign` for binary inputs.
`export_onnx` writes that copy as an ONNX graph; `save_packed` / `load_packed` store each binary weight in
one bit (numpy `packbits`) with its per-channel scale, next to the real parameters.
"""

from binas.export.inference import BinarySign, to_inference
from binas.export.onnx import export_onnx
from binas.export.packed import PackedSizes, load_packed, save_packed

__all__ = ["BinarySign", "PackedSizes", "export_onnx", "load_packed", "save_packed", "to_inference"]
