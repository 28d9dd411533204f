"""`deploy`: the deployment form of a trained network, with BatchNorm folded and integer 1-bit convs.

Each conv of the trained network becomes one of three modules, each with the BatchNorm that follows it
folded in (scale and shift per output channel, computed in float64):

* binary input and binary weight: `IntegerConv2d` (int8 +-1 conv, int32 accumulation, then scale/shift);
* binary weight on real input (the `released` policy's other convs): `SignWeightConv2d` (float conv);
* real conv (stems, a real network's convs): a plain `nn.Conv2d` with the BatchNorm folded in.

A BatchNorm is folded when it directly follows its conv in an `nn.Sequential`, or after the concatenation
of a `FactorizedReduce` (each half folds into its conv); every other module is kept as it is. The result
computes what the trained network computes in eval mode, with the integer sums bit for bit equal and the
rest within float rounding (a fused scale and shift rounds differently from a conv followed by a BN).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from binas.export import native
from binas.export.deployed_cell import deploy_cells, steps
from binas.export.integer_conv import Engine, IntegerConv2d, default_engine, require_engine
from binas.export.sign_weight_conv import SignWeightConv2d
from binas.quant.layers import QuantConv2d
from binas.space.ops import FactorizedReduce


@dataclass(frozen=True)
class BinaryKernel:
    """A binary conv's weight as a deployed network stores it: int8 signs and the scale beta per channel."""

    signs: Tensor
    beta: Tensor

    @classmethod
    def of(cls, conv: QuantConv2d) -> BinaryKernel:
        """The kernel the trained conv uses: sign(W) (sign(0) = +1) and its quantizer's scale."""
        assert conv.weight_quantizer is not None, "a binary conv has a weight quantizer"
        with torch.no_grad():
            signs = torch.where(conv.weight >= 0, 1, -1).to(torch.int8)
            beta = conv.weight_quantizer.scale(conv.weight).reshape(-1)
        return cls(signs.cpu(), beta.detach().double().cpu())


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """(a, b) with BN(z) = a * z + b in eval mode, in float64."""
    assert bn.running_mean is not None and bn.running_var is not None, "a deployed BatchNorm tracks statistics"
    inv = 1.0 / torch.sqrt(bn.running_var.double() + bn.eps)
    a = inv * bn.weight.double() if bn.weight is not None else inv
    b = -bn.running_mean.double() * a
    if bn.bias is not None:
        b = b + bn.bias.double()
    return a.detach().cpu(), b.detach().cpu()


def _deployed_conv(
    conv: nn.Conv2d, bn: tuple[Tensor, Tensor] | None, kernel: BinaryKernel | None, engine: Engine
) -> nn.Module:
    """The deployed form of `conv` followed by the affine map `bn` (a, b) when given."""
    out = conv.out_channels
    a, b = bn if bn is not None else (torch.ones(out, dtype=torch.float64), torch.zeros(out, dtype=torch.float64))
    bias = conv.bias.detach().double().cpu() if conv.bias is not None else torch.zeros(out, dtype=torch.float64)
    shift = (a * bias + b).float()
    geometry = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
    binary = isinstance(conv, QuantConv2d) and conv.binary_weights
    if binary:
        kernel = kernel or BinaryKernel.of(conv)  # type: ignore[arg-type]
        scale = (kernel.beta.double() * a).float()
        if isinstance(conv, QuantConv2d) and conv.binary_activations:
            return IntegerConv2d(kernel.signs, scale, shift, engine=engine, **geometry)  # type: ignore[arg-type]
        return SignWeightConv2d(kernel.signs, scale, shift, **geometry)  # type: ignore[arg-type]
    if isinstance(conv, QuantConv2d) and conv.binary_activations:
        raise ValueError("a conv with binary activations and real weights has no deployed form")
    if not isinstance(conv.padding, tuple) or conv.padding_mode != "zeros":
        raise ValueError(f"cannot deploy a conv with padding={conv.padding!r}, padding_mode={conv.padding_mode!r}")
    plain = nn.Conv2d(conv.in_channels, out, conv.kernel_size, bias=True, **geometry)  # type: ignore[arg-type]
    with torch.no_grad():
        weight = conv.weight.detach().double().cpu() * a.reshape(-1, 1, 1, 1)
        plain.weight.copy_(weight.float())
        plain.bias.copy_(shift)  # type: ignore[union-attr]
    return plain.to(memory_format=torch.channels_last).requires_grad_(False)  # type: ignore[call-overload]


def _kernel(kernels: Mapping[str, BinaryKernel], prefix: str, name: str) -> BinaryKernel | None:
    return kernels.get(f"{prefix}.{name}" if prefix else name)


def _fold_sequential(seq: nn.Sequential, prefix: str, kernels: Mapping[str, BinaryKernel], engine: Engine) -> set[str]:
    """Replace each conv of `seq` (with the BatchNorm right after it); return the names of the replaced convs."""
    names = list(seq._modules)
    done: set[str] = set()
    for i, name in enumerate(names):
        conv = seq._modules[name]
        if not isinstance(conv, nn.Conv2d):
            continue
        following = seq._modules[names[i + 1]] if i + 1 < len(names) else None
        bn = following if isinstance(following, nn.BatchNorm2d) and following.track_running_stats else None
        seq._modules[name] = _deployed_conv(
            conv, _bn_affine(bn) if bn else None, _kernel(kernels, prefix, name), engine
        )
        if bn is not None:
            seq._modules[names[i + 1]] = nn.Identity()
        done.add(name)
    return done


def _fold_factorized_reduce(
    fr: FactorizedReduce, prefix: str, kernels: Mapping[str, BinaryKernel], engine: Engine
) -> set[str]:
    """Fold FactorizedReduce's BatchNorm (after the concatenation) into its two convs, half each."""
    post = fr.post
    head = post[0] if isinstance(post, nn.Sequential) and len(post) else post
    bn = head if isinstance(head, nn.BatchNorm2d) and head.track_running_stats else None
    affine = _bn_affine(bn) if bn is not None else None
    split = fr.conv_a.out_channels
    for name, part in (("conv_a", slice(0, split)), ("conv_b", slice(split, None))):
        conv = getattr(fr, name)
        half = (affine[0][part], affine[1][part]) if affine is not None else None
        setattr(fr, name, _deployed_conv(conv, half, _kernel(kernels, prefix, name), engine))
    if bn is not None:
        if isinstance(post, nn.Sequential):
            post[0] = nn.Identity()
        else:
            fr.post = nn.Identity()
    return {"conv_a", "conv_b"}


def _replace(module: nn.Module, prefix: str, kernels: Mapping[str, BinaryKernel], engine: Engine) -> None:
    done: set[str] = set()
    if isinstance(module, FactorizedReduce):
        done = _fold_factorized_reduce(module, prefix, kernels, engine)
    elif isinstance(module, nn.Sequential):
        done = _fold_sequential(module, prefix, kernels, engine)
    for name, child in list(module.named_children()):
        if name in done:
            continue
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Conv2d):  # a conv outside a Sequential: no BatchNorm to fold
            setattr(module, name, _deployed_conv(child, None, _kernel(kernels, prefix, name), engine))
        else:
            _replace(child, path, kernels, engine)


def _fuse_signs(net: nn.Module) -> int:
    """Make each `IntegerConv2d` whose output goes straight into another one output its sign (the consumer
    needs nothing else); return how many. Only sequential chains are followed: a conv whose output also
    feeds a sum or a shortcut keeps its value."""
    fused = 0
    for module in net.modules():
        if not isinstance(module, nn.Sequential):
            continue
        chain = steps(module)
        for producer, consumer in zip(chain, chain[1:]):
            if isinstance(producer, IntegerConv2d) and isinstance(consumer, IntegerConv2d) and not producer.sign_output:
                producer.output_sign(bits=producer.native_supported() and consumer.prefers_bits())
                fused += 1
    return fused


class DeployedNetwork(nn.Module):
    """A deployed network: `net` with integer binary convs; inputs are made channels_last (what the kernels
    are fastest on). `engine` says which integer engine the binary convs use."""

    def __init__(self, net: nn.Module, engine: Engine) -> None:
        super().__init__()
        self.net = net
        self.engine = engine

    def forward(self, x: Tensor) -> Tensor:
        if torch.onnx.is_in_onnx_export():
            return self.net(x)
        native.clear_sign_cache()  # signs are shared between the convs of one forward only
        try:
            return self.net(x.contiguous(memory_format=torch.channels_last))
        finally:
            native.clear_sign_cache()

    def integer_convs(self) -> dict[str, IntegerConv2d]:
        """The 1-bit x 1-bit convs by their name in the trained network."""
        return {n.removeprefix("net."): m for n, m in self.named_modules() if isinstance(m, IntegerConv2d)}


@torch.no_grad()
def deploy(
    model: nn.Module,
    *,
    engine: Engine | None = None,
    kernels: Mapping[str, BinaryKernel] | None = None,
    fuse_signs: bool = True,
) -> DeployedNetwork:
    """The deployment form of a trained network (an eval-mode copy on the CPU; `model` is left as it is).

    Args:
        model: a trained network (any module built from `QuantConv2d`/`nn.Conv2d` and BatchNorms).
        engine: the integer engine of the 1-bit x 1-bit convs (default: `default_engine()`).
        kernels: binary kernels by conv name to use instead of the convs' latent weights (the packed file's
            signs and scales, so loading it never builds float kernels).
        fuse_signs: a 1-bit conv feeding only 1-bit convs outputs the sign they need (in the kernel) instead of
            a float map (`IntegerConv2d.output_sign`): within a chain of convs, and between DARTS cells
            (`binas.export.deployed_cell.deploy_cells`).
    """
    engine = require_engine(engine or default_engine())
    net = copy.deepcopy(model).cpu().eval()
    _replace(net, "", kernels or {}, engine)
    if fuse_signs:
        _fuse_signs(net)
    deploy_cells(net, native_pooling=engine == "native", pass_signs=fuse_signs)
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return DeployedNetwork(net, engine).eval().requires_grad_(False)
