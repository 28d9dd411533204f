"""Per-block, per-candidate costs of the mobile space: FLOPs / OPs / params from the profiler, latency
from a measured lookup table (spec ddpnas §2.1: `flops.json` and the latency LUT of the reference).

Costs are additive by construction: the stem, the fixed first block and the head are the same modules
in the supernet and in a derived `MobileNetwork`, and a shortcut add costs nothing in the profiler's
counting rules, so `fixed + sum(chosen block costs)` is exactly the derived network's profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from binas.generation.latency import TIMED_CALLS, LatencyTable, device_description, measure_latency
from binas.metrics.complexity import profile_model
from binas.quant.policy import BinarizationPolicy
from binas.space.mobilenet import (
    ZERO,
    BlockSpec,
    Candidate,
    ChoiceBlock,
    MobileNetConfig,
    MobileSupernet,
    candidate_name,
)

#: The profiler quantities a budget may bound.
PROFILE_METRICS: tuple[str, ...] = ("flops", "ops", "params")


@dataclass
class MobileCosts:
    """Cost of the fixed parts (`fixed[metric]`) and of candidate k on block i (`blocks[metric][i, k]`)."""

    candidates: list[tuple[Candidate, ...]]
    fixed: dict[str, float]
    blocks: dict[str, np.ndarray]

    def total(self, metric: str, choice: list[int] | tuple[int, ...]) -> float:
        return self.fixed[metric] + float(sum(self.blocks[metric][i, k] for i, k in enumerate(choice)))


#: An (N, C, H, W) input shape.
Shape = tuple[int, int, int, int]


def _shape(x: Tensor) -> Shape:
    n, c, h, w = x.shape
    return n, c, h, w


def _blocks(net: MobileSupernet) -> list[ChoiceBlock]:
    """The searchable blocks of `net` (its `blocks` ModuleList holds only `ChoiceBlock`s)."""
    return cast("list[ChoiceBlock]", list(net.blocks))


def _shapes(net: MobileSupernet, image_size: int) -> tuple[Shape, list[Shape], Shape]:
    """Input shapes of the first block, of every searchable block and of the head (batch 1)."""
    with torch.no_grad():
        x = net.stem(torch.zeros(1, net.in_channels, image_size, image_size))
        first = _shape(x)
        x = net.first_block(x)
        shapes = []
        for block in net.blocks:
            shapes.append(_shape(x))
            x = block(x, 0)
    return first, shapes, _shape(x)


def _build(cfg: MobileNetConfig, num_classes: int, in_channels: int, policy: BinarizationPolicy) -> MobileSupernet:
    net = MobileSupernet(cfg, num_classes=num_classes, in_channels=in_channels, policy=policy)
    return net.eval()


def mobile_costs(
    cfg: MobileNetConfig, *, num_classes: int, in_channels: int, image_size: int, policy: BinarizationPolicy
) -> MobileCosts:
    """Profile every candidate of every block once (on CPU, batch 1) and the fixed parts."""
    net = _build(cfg, num_classes, in_channels, policy)
    first, shapes, head = _shapes(net, image_size)
    parts = ((net.stem, (1, in_channels, image_size, image_size)), (net.first_block, first), (net.head, head))
    fixed = {m: 0.0 for m in PROFILE_METRICS}
    for module, shape in parts:
        prof = profile_model(module, shape)
        for m in PROFILE_METRICS:
            fixed[m] += float(getattr(prof, m))
    n, k_ops = net.num_blocks, net.num_ops
    blocks = {m: np.zeros((n, k_ops)) for m in PROFILE_METRICS}
    for i, (block, shape) in enumerate(zip(_blocks(net), shapes)):
        for k, cand in enumerate(block.candidates):
            if cand == ZERO:
                continue
            prof = profile_model(block.ops[k], shape)
            for m in PROFILE_METRICS:
                blocks[m][i, k] = float(getattr(prof, m))
    return MobileCosts(net.candidates(), fixed, blocks)


def block_key(spec: BlockSpec, candidate: Candidate, shape: tuple[int, ...], policy: str, batch: int) -> str:
    """LUT key of one block, e.g. `mbconv-input:8x8x24-output:24-kernel:5-expand:6-stride:1-idskip:1-...`."""
    _, c, h, w = shape
    if candidate == ZERO:
        return f"zero-input:{h}x{w}x{c}"
    kernel, expand = cast("tuple[int, int]", candidate)  # not ZERO, the only str candidate
    return (
        f"mbconv-input:{h}x{w}x{c}-output:{spec.c_out}-kernel:{kernel}-expand:{expand}-stride:{spec.stride}"
        f"-idskip:{int(spec.skippable)}-policy:{policy}-batch:{batch}"
    )


def _fixed_keys(net: MobileSupernet, shapes: tuple[tuple[int, ...], ...], policy: str, batch: int) -> list[str]:
    """LUT keys of the stem, first block and head (their shapes and widths identify them)."""
    (_, c, h, w), (_, c1, h1, w1), (_, c2, h2, w2) = shapes
    classes = net.head[-1].out_features
    head_width = net.head[0].out_channels
    return [
        f"stem-input:{h}x{w}x{c}-output:{c1}-stride:{net.cfg.stem_stride}-batch:{batch}",
        f"first_block-input:{h1}x{w1}x{c1}-output:{net.first_block.spec.c_out}-policy:{policy}-batch:{batch}",
        f"head-input:{h2}x{w2}x{c2}-mix:{head_width}-classes:{classes}-batch:{batch}",
    ]


def measure_mobile_latency(
    cfg: MobileNetConfig,
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    policy: BinarizationPolicy,
    device: torch.device,
    batch_size: int = 1,
    table: LatencyTable | None = None,
    repeats: int | None = None,
) -> LatencyTable:
    """Measure (on `device`) every block candidate and fixed part of the space not yet in `table`."""
    table = table or LatencyTable(device_description(device), torch.get_num_threads(), batch_size)
    table.check_matches(device, batch_size)
    net = _build(cfg, num_classes, in_channels, policy)
    first, shapes, head = _shapes(net, image_size)
    net.to(device)
    timed_calls = TIMED_CALLS if repeats is None else repeats
    stem_in = (1, in_channels, image_size, image_size)
    fixed_shapes = (stem_in, first, head)

    def batched(shape: tuple[int, ...]) -> tuple[int, ...]:
        return (batch_size, *shape[1:])

    modules: list[nn.Module] = [net.stem, net.first_block, net.head]
    for key, module, shape in zip(_fixed_keys(net, fixed_shapes, policy.name, batch_size), modules, fixed_shapes):
        if key not in table.entries:
            table.entries[key] = measure_latency(module, batched(shape), device=device, repeats=timed_calls)
    for block, shape in zip(_blocks(net), shapes):
        for k, cand in enumerate(block.candidates):
            key = block_key(block.spec, cand, shape, policy.name, batch_size)
            if key in table.entries:
                continue
            if cand == ZERO:
                table.entries[key] = 0.0
            else:
                table.entries[key] = measure_latency(
                    block, batched(shape), device=device, forward=partial(block, index=k), repeats=timed_calls
                )
    return table


def latency_costs(
    cfg: MobileNetConfig,
    table: LatencyTable,
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    policy: BinarizationPolicy,
) -> tuple[float, np.ndarray]:
    """(fixed ms, (n, K) ms per candidate) looked up in `table` for this space."""
    net = _build(cfg, num_classes, in_channels, policy)
    first, shapes, head = _shapes(net, image_size)
    fixed_shapes = ((1, in_channels, image_size, image_size), first, head)
    fixed = sum(table.lookup(k) for k in _fixed_keys(net, fixed_shapes, policy.name, table.batch_size))
    costs = np.array(
        [
            [table.lookup(block_key(b.spec, c, s, policy.name, table.batch_size)) for c in b.candidates]
            for b, s in zip(_blocks(net), shapes)
        ]
    )
    return float(fixed), costs


def describe_choice(candidates: list[tuple[Candidate, ...]], choice: tuple[int, ...]) -> str:
    return " ".join(candidate_name(c[k]) for c, k in zip(candidates, choice))
