"""The packed deployment file: one bit per binary weight, its per-channel scale, and the real parameters.

Layout (a binas checkpoint of kind `packed`, so loading is validated and never unpickles code):
`bits` is one uint8 tensor holding every binary kernel's signs (numpy `packbits`, 1 = +1, each kernel
starting on a byte), `reals` one float32 tensor holding the scales beta and every real parameter and
buffer. Where each piece lies follows from the network the spec builds (its state_dict order), so the
file stores no names, only `layout`, a SHA-256 of that order with each entry's shape, which loading
checks. `load_packed` rebuilds the inference copy with kernels beta * sign; `load_deployed` rebuilds the
deployment form (`binas.export.deploy`) from the signs and scales, with no float kernels on the way.
beta * sign is bit for bit the kernel the trained conv uses when its binarizer's forward computes
beta * sign(W) exactly (then the outputs equal the trained model's in eval mode); a straight-through
forward written as `(beta sign(W) - clip(W)) + clip(W)` differs from it by float rounding.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from binas.errors import CheckpointError
from binas.export.deploy import BinaryKernel, DeployedNetwork, deploy
from binas.export.inference import to_inference
from binas.export.integer_conv import Engine
from binas.nets.model_file import ModelSpec
from binas.quant.layers import QuantConv2d
from binas.quant.quantizers import WeightQuantizer
from binas.storage.checkpoint import load_checkpoint, save_checkpoint

PACKED_KIND = "packed"
#: Version of the packed layout: 2 stores no per-entry index (binas 0.x before it wrote names and offsets).
PACKED_FORMAT = 2
BITS_PER_BYTE = 8
REAL_BITS = 32
#: Buffers a deployed network does not need (BatchNorm's batch counter).
SKIPPED_BUFFERS = ("num_batches_tracked",)
#: The training-only auxiliary head of a `Network`, left out of a deployed file.
AUX_PREFIX = "aux_head."


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


@dataclass(frozen=True)
class _Entry:
    """One piece of a packed file: a binary conv's signs (and its scales), or a real tensor."""

    name: str
    kind: str  # "binary" or "real"
    shape: tuple[int, ...]


def _binary_convs(model: nn.Module) -> dict[str, QuantConv2d]:
    return {n: m for n, m in model.named_modules() if isinstance(m, QuantConv2d) and m.binary_weights}


def _weight_quantizer(conv: QuantConv2d) -> WeightQuantizer:
    """The binarizer of a conv with binary weights (as all of `_binary_convs` are)."""
    assert conv.weight_quantizer is not None, "a conv with binary weights has a weight quantizer"
    return conv.weight_quantizer


def _left_out(model: nn.Module) -> set[str]:
    """State keys the packed file does not store: binary latent weights, their quantizer's parameters (both
    become signs and scales) and BatchNorm's batch counters."""
    convs = _binary_convs(model)
    keys = {f"{n}.weight" for n in convs}
    keys |= {f"{n}.weight_quantizer.{k}" for n, c in convs.items() for k, _ in _weight_quantizer(c).named_parameters()}
    keys |= {k for k in model.state_dict() if k.rsplit(".", 1)[-1] in SKIPPED_BUFFERS}
    return keys


def _layout(model: nn.Module) -> list[_Entry]:
    """The pieces of `model`'s packed file, in file order: binary convs first, then the real state (without
    the training-only auxiliary head)."""
    entries = [_Entry(n, "binary", tuple(c.weight.shape)) for n, c in _binary_convs(model).items()]
    skip = _left_out(model)
    entries += [_Entry(k, "real", tuple(v.shape)) for k, v in model.state_dict().items() if k not in skip]
    return [e for e in entries if not e.name.startswith(AUX_PREFIX)]


def _layout_hash(entries: list[_Entry]) -> str:
    text = json.dumps([[e.name, e.kind, list(e.shape)] for e in entries])
    return hashlib.sha256(text.encode()).hexdigest()


def _sizes(model: nn.Module, entries: list[_Entry], file_bytes: int) -> PackedSizes:
    """The `PackedSizes` of `model`'s packed file with these entries."""
    params = {name for name, _ in model.named_parameters()}
    binary = [math.prod(e.shape) for e in entries if e.kind == "binary"]
    padding = sum(-n % BITS_PER_BYTE for n in binary)
    scales = sum(e.shape[0] for e in entries if e.kind == "binary")
    reals = [(e.name in params, math.prod(e.shape)) for e in entries if e.kind == "real"]
    return PackedSizes(
        binary_weight_bits=sum(binary),
        padding_bits=padding,
        scale_bits=scales * REAL_BITS,
        real_param_bits=sum(n for is_param, n in reals if is_param) * REAL_BITS,
        buffer_bits=sum(n for is_param, n in reals if not is_param) * REAL_BITS,
        file_bytes=file_bytes,
    )


def save_packed(model: nn.Module, spec: ModelSpec, path: str | Path) -> PackedSizes:
    """Write `model` (a trained `Network` described by `spec`) in the packed form; return its sizes."""
    entries = _layout(model)
    convs, state = _binary_convs(model), model.state_dict()
    bits: list[np.ndarray] = []
    reals: list[Tensor] = []
    with torch.no_grad():
        for entry in entries:
            if entry.kind == "binary":
                conv = convs[entry.name]
                bits.append(np.packbits(conv.weight.detach().cpu().numpy().reshape(-1) >= 0))
                reals.append(_weight_quantizer(conv).scale(conv.weight).detach().reshape(-1).float().cpu())
            else:
                reals.append(state[entry.name].detach().reshape(-1).float().cpu())
    payload = {
        "format": PACKED_FORMAT,
        "spec": spec.to_dict(),
        "layout": _layout_hash(entries),
        "bits": torch.from_numpy(np.concatenate(bits) if bits else np.zeros(0, dtype=np.uint8)),
        "reals": torch.cat(reals) if reals else torch.zeros(0),
    }
    path = save_checkpoint(path, payload, kind=PACKED_KIND)
    return _sizes(model, entries, path.stat().st_size)


def _pieces(entries: list[_Entry], bits: np.ndarray, reals: Tensor) -> Iterator[tuple[_Entry, Tensor, Tensor | None]]:
    """Each entry with its data: (entry, signs as int8 +-1 and beta) for binary convs, (entry, tensor, None)."""
    bit_offset = real_offset = 0
    for entry in entries:
        n = math.prod(entry.shape)
        if entry.kind == "binary":
            count = (n + BITS_PER_BYTE - 1) // BITS_PER_BYTE
            signs = np.unpackbits(bits[bit_offset : bit_offset + count], count=n).astype(np.int8) * 2 - 1
            beta = reals[real_offset : real_offset + entry.shape[0]]
            bit_offset, real_offset = bit_offset + count, real_offset + entry.shape[0]
            yield entry, torch.from_numpy(signs.reshape(entry.shape)), beta
        else:
            yield entry, reals[real_offset : real_offset + n].reshape(entry.shape), None
            real_offset += n
    if bit_offset != bits.size or real_offset != reals.numel():
        raise ValueError("sizes differ")


def _read(path: str | Path) -> tuple[nn.Module, ModelSpec, dict[str, BinaryKernel]]:
    """The network a packed file describes with its real state loaded, and its binary kernels by name."""
    payload = load_checkpoint(path, kind=PACKED_KIND)
    if payload.get("format") != PACKED_FORMAT:
        raise CheckpointError(
            f"{path} is a packed file of another layout (format {payload.get('format', 1)!r}, this binas reads "
            f"{PACKED_FORMAT}): export it again with `binas export --format packed` from its model.pt"
        )
    try:
        spec = ModelSpec.from_dict(payload["spec"], str(path))
        bits, reals, layout = payload["bits"].numpy(), payload["reals"].float(), payload["layout"]
    except (KeyError, AttributeError) as exc:
        raise CheckpointError(f"{path} is a corrupt packed model: missing {exc}") from None
    net = spec.build(auxiliary=False)
    entries = _layout(net)
    if layout != _layout_hash(entries):
        raise CheckpointError(f"{path}: the packed weights do not fit the network its spec describes")
    state: dict[str, Tensor] = {}
    kernels: dict[str, BinaryKernel] = {}
    try:
        for entry, data, beta in _pieces(entries, bits, reals):
            if beta is None:
                state[entry.name] = data
            else:
                kernels[entry.name] = BinaryKernel(data, beta.double())
    except ValueError:
        raise CheckpointError(f"{path} is a corrupt packed model: its data does not fill its layout") from None
    net.load_state_dict(state, strict=False)
    return net.eval(), spec, kernels


def packed_sizes(path: str | Path) -> PackedSizes:
    """The `PackedSizes` of a packed file (read and checked like `load_packed` does)."""
    net, _, _ = _read(path)
    return _sizes(net, _layout(net), Path(path).stat().st_size)


def load_packed(path: str | Path) -> tuple[nn.Module, ModelSpec]:
    """Rebuild the eval-mode inference network of a packed file (CPU, float convs): (model, spec)."""
    net, spec, kernels = _read(path)
    weights = {name: (k.beta.float().reshape(-1, 1, 1, 1) * k.signs.float()) for name, k in kernels.items()}
    return to_inference(net, weights), spec


def load_deployed(path: str | Path, *, engine: Engine | None = None) -> tuple[DeployedNetwork, ModelSpec]:
    """Rebuild the deployment form (`binas.export.deploy`) of a packed file from its signs and scales."""
    net, spec, kernels = _read(path)
    return deploy(net, engine=engine, kernels=kernels), spec
