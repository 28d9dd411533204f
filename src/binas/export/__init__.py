"""Deploying a trained network: the deployment form, ONNX graphs (float or integer) and a 1-bit packed file.

`deploy(model)` gives the deployment form: BatchNorm folded, every 1-bit x 1-bit conv an integer conv
(+-1 products, exact integer sums) on binas's native kernels (`binas.export.native`: XNOR-popcount on sign
bits, compiled on first use) or PyTorch's oneDNN int8 engine, binary-weight convs on real inputs as float
convs that keep their signs. `to_inference(model)` is the float inference copy (folded +-beta kernels
behind a `BinarySign`). `export_onnx` writes either as ONNX (`form="int8"`: `ConvInteger` and int8 weights);
`save_packed` / `load_packed` / `load_deployed` store each binary weight in one bit with its scale.
"""

from binas.export.deploy import BinaryKernel, DeployedNetwork, deploy
from binas.export.inference import BinarySign, to_inference
from binas.export.integer_conv import ENGINES, IntegerConv2d, default_engine, engine_available, require_engine
from binas.export.onnx import export_onnx
from binas.export.packed import PackedSizes, load_deployed, load_packed, packed_sizes, save_packed
from binas.export.sign_weight_conv import SignWeightConv2d

__all__ = [
    "ENGINES",
    "BinaryKernel",
    "BinarySign",
    "DeployedNetwork",
    "IntegerConv2d",
    "PackedSizes",
    "SignWeightConv2d",
    "default_engine",
    "deploy",
    "engine_available",
    "export_onnx",
    "load_deployed",
    "load_packed",
    "packed_sizes",
    "require_engine",
    "save_packed",
    "to_inference",
]
