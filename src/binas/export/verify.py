"""Checks that a deployed network computes what the trained one computes.

`integer_sums_equal`: layer by layer, each `IntegerConv2d` is given the input its trained conv sees and its
engine's int32 accumulation must equal the exact integer sum of sign(x) * sign(W) (bit for bit).
`compare_outputs`: logits of two networks over a data set: top-1 of each, prediction agreement and the
largest logit difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from binas.export.deploy import DeployedNetwork
from binas.quant.functional import hard_sign


@dataclass(frozen=True)
class LayerCheck:
    """One 1-bit x 1-bit conv: how many int32 sums its engine computed and how many differ from exact."""

    name: str
    sums: int
    mismatches: int


def _conv_of(module: nn.Module) -> nn.Conv2d:
    """The conv a trained binary conv is: a `QuantConv2d`, or in an inference copy (`to_inference`) the
    plain conv behind its `BinarySign` (kernel +-beta, so its signs are sign(W))."""
    if isinstance(module, nn.Conv2d):
        return module
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != 1:
        raise ValueError(f"expected one conv in {type(module).__name__}, found {len(convs)}")
    return convs[0]


@torch.no_grad()
def integer_sums_equal(trained: nn.Module, deployed: DeployedNetwork, x: Tensor) -> list[LayerCheck]:
    """Run `x` through `trained` (eval mode), feed every binary conv's input to its deployed `IntegerConv2d`,
    and count the int32 sums that differ from the exact sums of sign(x) * sign(W) of the trained conv
    (computed in float64, where sums of +-1 products are exact). `trained` is the trained network or its
    inference copy (what `load_packed` gives)."""
    modules = dict(trained.named_modules())
    inputs: dict[str, Tensor] = {}
    hooks = [
        modules[name].register_forward_pre_hook(lambda _m, args, name=name: inputs.__setitem__(name, args[0].detach()))
        for name in deployed.integer_convs()
    ]
    was_training = trained.training
    try:
        trained.eval()(x)
    finally:
        trained.train(was_training)
        for hook in hooks:
            hook.remove()
    checks = []
    for name, conv in deployed.integer_convs().items():
        ref = _conv_of(modules[name])
        exact = F.conv2d(
            hard_sign(inputs[name]).double(),
            hard_sign(ref.weight.detach()).double(),
            None,
            ref.stride,
            ref.padding,
            ref.dilation,
            ref.groups,
        )
        got = conv.accumulate(inputs[name].float().contiguous(memory_format=torch.channels_last)).double()
        checks.append(LayerCheck(name, got.numel(), int((got != exact).sum())))
    return checks


@dataclass(frozen=True)
class Agreement:
    """Two networks on one data set: top-1 of each, % of images with the same prediction, max |logit diff|."""

    images: int
    top1_reference: float
    top1_candidate: float
    agreement_pct: float
    max_abs_logit_diff: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def compare_outputs(
    reference: Callable[[Tensor], Tensor],
    candidate: Callable[[Tensor], Tensor],
    batches: Iterable[tuple[Tensor, Tensor]],
) -> Agreement:
    """Run both callables (logits from a batch of images) on every batch; compare as `Agreement` says."""
    n = hits_ref = hits_cand = same = 0
    max_diff = 0.0
    for x, y in batches:
        a, b = reference(x).float(), candidate(x).float()
        pa, pb = a.argmax(1), b.argmax(1)
        n += len(y)
        hits_ref += int((pa == y).sum())
        hits_cand += int((pb == y).sum())
        same += int((pa == pb).sum())
        max_diff = max(max_diff, float((a - b).abs().max()))
    n_safe = max(n, 1)
    return Agreement(n, 100.0 * hits_ref / n_safe, 100.0 * hits_cand / n_safe, 100.0 * same / n_safe, max_diff)


def onnx_runner(path: str, threads: int | None = None) -> Callable[[Tensor], Tensor]:
    """A callable running an ONNX file in ONNX Runtime's CPU provider (logits as a tensor)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: Tensor) -> Tensor:
        out = session.run(None, {name: np.ascontiguousarray(x.float().cpu().numpy())})[0]
        return torch.from_numpy(np.asarray(out))

    return run
