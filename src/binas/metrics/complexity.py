"""Model complexity: parameters, FLOPs, BOPs, OPs and memory, counted the Bi-Real Net way.

Counting rules (Liu et al., Bi-Real Net, ECCV 2018; used by ReActNet, BATS and the DCP-NAS tables):

* Only convolutions (`nn.Conv1d/2d/3d`, hence `QuantConv2d`) and `nn.Linear` layers are counted;
  BatchNorm, pooling, PReLU/ReLU, element-wise adds, concatenations and bias adds cost nothing here.
* The MACs of a conv are C_out * H_out * W_out * (C_in / groups) * k_h * k_w, of a Linear in * out,
  per image (the batch dimension of the dummy input is not multiplied in). As in those papers, a
  multiply-accumulate is reported as one "FLOP".
* BOPs are the MACs of convs with binary weights *and* binary activations (XNOR + popcount). The MACs
  of every other conv/linear are FLOPs. With `bops_convention="lenient"` every conv with binary
  weights counts as BOPs, whatever its activations (what some papers do for 1-bit-weight convs).
* OPs = BOPs / 64 + FLOPs (a 64-bit CPU does 64 binary operations per instruction).
* Memory counts parameters only (no buffers: BN running statistics fold into the BN affine at
  deployment): 1 bit per weight of a binary-weight conv, 32 bits per other parameter, plus 32 bits
  per output channel of a binary-weight conv whose scale beta is computed (mean |W|) rather than a
  parameter, since that scale must be stored at deployment. 1 Mbit = 10^6 bits (not 2^20).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from binas.errors import ConfigError
from binas.quant.layers import QuantConv2d
from binas.quant.policy import BinarizationPolicy

if TYPE_CHECKING:
    from binas.genotype import Genotype

BopsConvention = Literal["strict", "lenient"]
BOPS_CONVENTIONS: tuple[str, ...] = ("strict", "lenient")
#: Binary operations one 64-bit instruction performs (Bi-Real Net: OPs = BOPs / 64 + FLOPs).
BOPS_PER_OP = 64
#: Bits of a real-valued parameter or scale factor.
REAL_BITS = 32
#: Bits per megabit (decimal convention).
BITS_PER_MBIT = 1e6
#: Input size (N, C, H, W) used for each data set by `profile_genotype`, with its stem kind.
DATASET_INPUTS: dict[str, tuple[str, tuple[int, int, int, int], int]] = {
    "cifar10": ("cifar", (1, 3, 32, 32), 10),
    "imagenet": ("imagenet", (1, 3, 224, 224), 1000),
    "digits": ("cifar", (1, 3, 16, 16), 10),  # binas's bundled default (8x8 digits upsampled to 16x16)
}
_COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class LayerProfile:
    """One conv/linear layer of a profile (a row of the per-layer summary table).

    Attributes:
        name: qualified module name in the model.
        type: class name of the module.
        weight_bits, activation_bits: 1 for binarized weights/inputs, 32 otherwise.
        params: parameters of the module (weight, bias and a learned weight scale).
        macs: multiply-accumulates per image, summed over every call of the module.
        counted_as: "BOPs" or "FLOPs".
    """

    name: str
    type: str
    weight_bits: int
    activation_bits: int
    params: int
    macs: int
    counted_as: str


@dataclass(frozen=True)
class Profile:
    """Complexity of a model on one input size (see the module docstring for the rules)."""

    params: int
    flops: int
    bops: int
    ops: float
    memory_mbit: float
    bops_convention: str
    layers: tuple[LayerProfile, ...] = ()
    input_size: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, int | float | str]:
        """The totals: params, flops, bops, ops, memory_mbit and bops_convention."""
        keys = ("params", "flops", "bops", "ops", "memory_mbit", "bops_convention")
        return {k: getattr(self, k) for k in keys}

    def format_table(self, per_layer: bool = False) -> str:
        """A plain-text summary (human units), optionally preceded by a Larq-style per-layer table."""
        lines: list[str] = []
        if per_layer:
            lines += _layer_table(self.layers, self.params)
            lines.append("")
        size = "x".join(str(s) for s in self.input_size)
        lines.append(f"input {size}, BOPs convention: {self.bops_convention}")
        rows = (
            ("params", f"{self.params / 1e6:.3f} M"),
            ("FLOPs", f"{self.flops / 1e6:.2f} MFLOPs"),
            ("BOPs", f"{self.bops / 1e6:.2f} MBOPs"),
            ("OPs", f"{self.ops / 1e6:.2f} MOPs  (BOPs/{BOPS_PER_OP} + FLOPs)"),
            ("memory", f"{self.memory_mbit:.3f} Mbit  ({self.memory_mbit / 8:.3f} MB)"),
        )
        lines += [f"  {k:<8}{v}" for k, v in rows]
        return "\n".join(lines)


def _layer_table(layers: tuple[LayerProfile, ...], total_params: int) -> list[str]:
    """Rows of the counted layers, then the uncounted parameters (BN, PReLU, ...) and the totals."""
    header = ("layer", "type", "w bits", "a bits", "params", "MACs", "counted as")
    body = [
        (l.name, l.type, str(l.weight_bits), str(l.activation_bits), f"{l.params:,}", f"{l.macs:,}", l.counted_as)
        for l in layers
    ]
    other = total_params - sum(l.params for l in layers)
    tail = [
        ("(other layers: BN, PReLU, ...)", "", "", "", f"{other:,}", "0", "-"),
        ("total", "", "", "", f"{total_params:,}", f"{sum(l.macs for l in layers):,}", ""),
    ]
    widths = [max(len(r[i]) for r in [header, *body, *tail]) for i in range(len(header))]
    right = {2, 3, 4, 5}

    def fmt(row: tuple[str, ...]) -> str:
        cells = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
        return "  ".join(cells).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return [fmt(header), rule, *(fmt(r) for r in body), fmt(tail[0]), rule, fmt(tail[1])]


def _bits(module: nn.Module) -> tuple[int, int]:
    """(weight bits, activation bits) of a counted layer."""
    if not isinstance(module, QuantConv2d):
        return REAL_BITS, REAL_BITS
    wq, aq = module.weight_quantizer, module.input_quantizer
    return (
        getattr(wq, "precision", 1) if wq is not None else REAL_BITS,
        getattr(aq, "precision", 1) if aq is not None else REAL_BITS,
    )


def _counted_as(module: nn.Module, convention: str) -> str:
    if isinstance(module, QuantConv2d) and module.binary_weights:
        if module.binary_activations or convention == "lenient":
            return "BOPs"
    return "FLOPs"


def _macs(module: nn.Module, output: Tensor) -> int:
    """Multiply-accumulates of one call, per image."""
    if isinstance(module, nn.Linear):
        positions = output[0].numel() // module.out_features  # >2-D inputs apply the Linear per position
        return positions * module.in_features * module.out_features
    assert isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d))
    kernel = 1
    for k in module.kernel_size:
        kernel *= k
    return output[0].numel() * (module.in_channels // module.groups) * kernel


def _excluded_modules(model: nn.Module) -> set[int]:
    """ids of modules not profiled: the auxiliary head (training-only, as in DARTS's reported params)."""
    aux = getattr(model, "aux_head", None)
    return {id(m) for m in aux.modules()} if isinstance(aux, nn.Module) else set()


def _named_counted(model: nn.Module, excluded: set[int]) -> Iterator[tuple[str, nn.Module]]:
    for name, m in model.named_modules():
        if isinstance(m, _COUNTED) and id(m) not in excluded:
            yield name, m


def _memory_bits(model: nn.Module, excluded: set[int]) -> tuple[int, int]:
    """(parameter count, storage bits) of the model without the excluded modules."""
    skip = {id(p) for m in model.modules() if id(m) in excluded for p in m.parameters(recurse=False)}
    one_bit: set[int] = set()
    scale_bits = 0
    for m in model.modules():
        # `weight_quantizer is not None` is `binary_weights`, spelled out so the type checker narrows it
        if isinstance(m, QuantConv2d) and m.weight_quantizer is not None and id(m) not in excluded:
            one_bit.add(id(m.weight))
            if not any(True for _ in m.weight_quantizer.parameters()):
                scale_bits += REAL_BITS * m.out_channels  # computed mean-|W| beta, stored at deployment
    params = bits = 0
    for p in model.parameters():
        if id(p) in skip:
            continue
        params += p.numel()
        bits += p.numel() * (1 if id(p) in one_bit else REAL_BITS)
    return params, bits + scale_bits


def _dummy_input(model: nn.Module, input_size: tuple[int, ...]) -> Tensor:
    ref = next((t for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None else torch.float32
    return torch.zeros(input_size, device=device, dtype=dtype)


def profile_model(
    model: nn.Module,
    input_size: tuple[int, int, int, int] = (1, 3, 32, 32),
    *,
    bops_convention: BopsConvention = "strict",
) -> Profile:
    """Count params, FLOPs, BOPs, OPs and memory of `model` with forward hooks on one dummy input.

    The model runs once in eval mode without gradients, on its own device; every module's
    train/eval flag is restored afterwards. A module called several times is counted once per call.
    If the model has an `aux_head` (DARTS's auxiliary classifier, used only in training), its
    parameters and operations are excluded, as in DARTS's reported parameter counts.
    """
    if bops_convention not in BOPS_CONVENTIONS:
        raise ConfigError(f"unknown BOPs convention '{bops_convention}'; choose one of: strict, lenient")
    excluded = _excluded_modules(model)
    counted = list(_named_counted(model, excluded))
    macs = {id(m): 0 for _, m in counted}

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        macs[id(module)] += _macs(module, output)

    modes = {m: m.training for m in model.modules()}
    handles = [m.register_forward_hook(hook) for _, m in counted]
    try:
        model.eval()
        with torch.no_grad():
            model(_dummy_input(model, input_size))
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode

    layers = tuple(
        LayerProfile(
            name=name,
            type=type(m).__name__,
            weight_bits=_bits(m)[0],
            activation_bits=_bits(m)[1],
            params=sum(p.numel() for p in m.parameters()),
            macs=macs[id(m)],
            counted_as=_counted_as(m, bops_convention),
        )
        for name, m in counted
    )
    bops = sum(l.macs for l in layers if l.counted_as == "BOPs")
    flops = sum(l.macs for l in layers if l.counted_as == "FLOPs")
    params, bits = _memory_bits(model, excluded)
    return Profile(
        params=params,
        flops=flops,
        bops=bops,
        ops=bops / BOPS_PER_OP + flops,
        memory_mbit=bits / BITS_PER_MBIT,
        bops_convention=bops_convention,
        layers=layers,
        input_size=tuple(input_size),
    )


def profile_genotype(
    genotype: Genotype | str,
    *,
    dataset: Literal["cifar10", "imagenet", "digits"] = "cifar10",
    family: str = "darts",
    policy: BinarizationPolicy | str = "real",
    channels: int = 36,
    layers: int = 20,
    num_classes: int | None = None,
    bops_convention: BopsConvention = "strict",
) -> Profile:
    """Profile the `binas.nets.Network` built from `genotype` for `dataset` (without auxiliary head).

    `cifar10` uses the CIFAR stem on a 32x32 input, `imagenet` the ImageNet stem on 224x224, `digits`
    the CIFAR stem on binas's 16x16 digits.
    `genotype` may be anything `parse_genotype` reads (a zoo name such as `darts-v2`), `policy` a
    `BinarizationPolicy` or a preset name; `num_classes` defaults to 10 / 1000.
    """
    from binas.genotype import parse_genotype
    from binas.nets import Network

    if dataset not in DATASET_INPUTS:
        raise ConfigError(f"cannot profile for data set '{dataset}'; choose one of: {', '.join(DATASET_INPUTS)}")
    stem, input_size, default_classes = DATASET_INPUTS[dataset]
    if isinstance(policy, str):
        policy = BinarizationPolicy.preset(policy)
    net = Network(
        parse_genotype(genotype),
        num_classes=num_classes or default_classes,
        in_channels=input_size[1],
        channels=channels,
        layers=layers,
        stem=stem,
        family=family,
        policy=policy,
        auxiliary=False,
    )
    return profile_model(net, input_size, bops_convention=bops_convention)
