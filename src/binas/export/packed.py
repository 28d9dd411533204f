"""The packed deployment file: one bit per binary weight, its per-channel scale, and the real parameters.

Layout (a binas checkpoint of kind `packed`, so loading is validated and never unpickles code):
`bits` is one uint8 tensor holding every binary kernel's signs (numpy `packbits`, 1 = +1, each kernel
starting on a byte), `reals` one float32 tensor holding the scales beta and every real parameter and
buffer, and `index` says where each piece is. `load_packed` rebuilds the inference copy with kernels
beta * sign. That is bit for bit the kernel the trained conv uses when its binarizer's forward computes
beta * sign(W) exactly (then the outputs equal the trained model's in eval mode); a straight-through
forward written as `(beta sign(W) - clip(W)) + clip(W)` differs from it by float rounding.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from binas.errors import CheckpointError
from binas.export.inference import to_inference
from binas.nets.model_file import ModelSpec
from binas.quant.functional import hard_sign
from binas.quant.layers import QuantConv2d
from binas.quant.quantizers import WeightQuantizer
from binas.storage.checkpoint import load_checkpoint, save_checkpoint

PACKED_KIND = "packed"
BITS_PER_BYTE = 8
REAL_BITS = 32
#: Buffers a deployed network does not need (BatchNorm's batch counter).
SKIPPED_BUFFERS = ("num_batches_tracked",)


@dataclass(frozen=True)
class PackedSizes:
    """What a packed file holds, in bits (the file itself adds a small index and the zip container).

    Attributes:
        binary_weight_bits: 1 per binary weight.
        padding_bits: zero bits that start each kernel on a byte.
        scale_bits, real_param_bits: 32 per scale beta and per real parameter (what the Mbit estimate of
            `binas.metrics.complexity` counts, with the binary weights).
        buffer_bits: 32 per BatchNorm running statistic (the estimate leaves them out: they fold into the
            BN affine at deployment).
        file_bytes: size of the file on disk.
    """

    binary_weight_bits: int
    padding_bits: int
    scale_bits: int
    real_param_bits: int
    buffer_bits: int
    file_bytes: int

    @property
    def payload_mbit(self) -> float:
        bits = self.binary_weight_bits + self.padding_bits + self.scale_bits + self.real_param_bits + self.buffer_bits
        return bits / 1e6

    @property
    def estimate_mbit(self) -> float:
        """The part `binas.metrics.complexity` counts as memory: weights, scales, real parameters."""
        return (self.binary_weight_bits + self.scale_bits + self.real_param_bits) / 1e6

    @property
    def file_mbit(self) -> float:
        return self.file_bytes * BITS_PER_BYTE / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "payload_mbit": self.payload_mbit,
            "estimate_mbit": self.estimate_mbit,
            "file_mbit": self.file_mbit,
        }


def _binary_convs(model: nn.Module) -> dict[str, QuantConv2d]:
    return {n: m for n, m in model.named_modules() if isinstance(m, QuantConv2d) and m.binary_weights}


def _weight_quantizer(conv: QuantConv2d) -> WeightQuantizer:
    """The binarizer of a conv with binary weights (as all of `_binary_convs` are)."""
    assert conv.weight_quantizer is not None, "a conv with binary weights has a weight quantizer"
    return conv.weight_quantizer


def save_packed(model: nn.Module, spec: ModelSpec, path: str | Path) -> PackedSizes:
    """Write `model` (a trained `Network` described by `spec`) in the packed form; return its sizes."""
    convs = _binary_convs(model)
    skip = {f"{n}.weight" for n in convs} | {
        f"{n}.weight_quantizer.{k}" for n, c in convs.items() for k, _ in _weight_quantizer(c).named_parameters()
    }
    bits: list[np.ndarray] = []
    reals: list[Tensor] = []
    index: list[dict[str, Any]] = []
    bit_offset = real_offset = 0
    sizes = dict(binary=0, padding=0, scale=0, param=0, buffer=0)
    with torch.no_grad():
        for name, conv in convs.items():
            packed = np.packbits(conv.weight.detach().cpu().numpy().reshape(-1) >= 0)
            beta = _weight_quantizer(conv).scale(conv.weight).detach().reshape(-1).float().cpu()
            index.append(
                {
                    "name": name,
                    "kind": "binary",
                    "shape": list(conv.weight.shape),
                    "offset": bit_offset,
                    "count": int(packed.size),
                    "scale_offset": real_offset,
                }
            )
            bits.append(packed)
            reals.append(beta)
            bit_offset += packed.size
            real_offset += beta.numel()
            sizes["binary"] += conv.weight.numel()
            sizes["padding"] += packed.size * BITS_PER_BYTE - conv.weight.numel()
            sizes["scale"] += beta.numel() * REAL_BITS
        params = dict(model.named_parameters())
        for name, tensor in model.state_dict().items():
            if name in skip or name.rsplit(".", 1)[-1] in SKIPPED_BUFFERS:
                continue
            flat = tensor.detach().reshape(-1).float().cpu()
            index.append(
                {
                    "name": name,
                    "kind": "real",
                    "shape": list(tensor.shape),
                    "offset": real_offset,
                    "count": flat.numel(),
                }
            )
            reals.append(flat)
            real_offset += flat.numel()
            sizes["param" if name in params else "buffer"] += flat.numel() * REAL_BITS
    payload = {
        "spec": spec.to_dict(),
        "bits": torch.from_numpy(np.concatenate(bits) if bits else np.zeros(0, dtype=np.uint8)),
        "reals": torch.cat(reals) if reals else torch.zeros(0),
        "index": index,
    }
    path = save_checkpoint(path, payload, kind=PACKED_KIND)
    return PackedSizes(
        sizes["binary"], sizes["padding"], sizes["scale"], sizes["param"], sizes["buffer"], path.stat().st_size
    )


def load_packed(path: str | Path) -> tuple[nn.Module, ModelSpec]:
    """Rebuild the eval-mode inference network of a packed file (CPU): (model, spec)."""
    payload = load_checkpoint(path, kind=PACKED_KIND)
    try:
        spec = ModelSpec.from_dict(payload["spec"], str(path))
        bits, reals, index = payload["bits"].numpy(), payload["reals"], payload["index"]
    except (KeyError, AttributeError) as exc:
        raise CheckpointError(f"{path} is a corrupt packed model: missing {exc}") from None
    net = spec.build(auxiliary=False)
    state, kernels = {}, {}
    for item in index:
        shape = tuple(item["shape"])
        if item["kind"] == "binary":
            n = math.prod(shape)
            signs = np.unpackbits(bits[item["offset"] : item["offset"] + item["count"]], count=n)
            sign = hard_sign(torch.from_numpy(signs.astype(np.float32)) - 0.5).reshape(shape)
            beta = reals[item["scale_offset"] : item["scale_offset"] + shape[0]].reshape(-1, *([1] * (len(shape) - 1)))
            kernels[item["name"]] = beta * sign  # the product the trained quantizer computes
        else:
            state[item["name"]] = reals[item["offset"] : item["offset"] + item["count"]].reshape(shape)
    result = net.load_state_dict(state, strict=False)
    expected_missing = set(_expected_missing(net))
    if result.unexpected_keys or set(result.missing_keys) - expected_missing:
        raise CheckpointError(f"{path}: the packed weights do not fit the network its spec describes")
    return to_inference(net.eval(), kernels), spec


def _expected_missing(net: nn.Module) -> list[str]:
    """Keys the packed file leaves out: binary latent weights, their quantizer parameters, BN counters."""
    convs = _binary_convs(net)
    keys = [f"{n}.weight" for n in convs]
    keys += [f"{n}.weight_quantizer.{k}" for n, c in convs.items() for k, _ in _weight_quantizer(c).named_parameters()]
    keys += [k for k in net.state_dict() if k.rsplit(".", 1)[-1] in SKIPPED_BUFFERS]
    return keys
