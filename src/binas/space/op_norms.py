"""R(w_m) per (edge, op) of a supernet: the weight norms decoupled optimization ranks α with (Eq. 4.53).

A query on the supernet's structure (which op of which edge holds which convs), so it lives with the
supernet; `binas.optim.decoupled` receives only the resulting tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor, nn

from binas.quant.layers import QuantConv2d
from binas.space.ops import Zero
from binas.space.stems import reduction_layers

if TYPE_CHECKING:
    from binas.space.cell import SearchCell
    from binas.space.mixed import MixedOp
    from binas.space.supernet import Supernet

#: Per-channel ‖w_m‖² of the identity op: w_m = 1 (spec §2.3).
IDENTITY_NORM_PER_CHANNEL = 1.0


def pooling_norm_per_channel(kernel_size: int) -> float:
    """‖w_m‖² of a K×K pooling kernel per channel: K² elements equal to 1/(K×K) (spec §2.3), i.e. 1/K²."""
    return kernel_size * kernel_size * (1.0 / (kernel_size * kernel_size)) ** 2


class OpNormTable:
    """R(w_m) = ‖w_m‖² per (edge, op), summed over all cells of each type (Eq. 4.53).

    Conv ops use the weights the forward uses (`QuantConv2d.quantized_weight()`): β∘sign(ŵ) in the 1-bit
    Child, the real weights in the Parent. Pooling uses 1/(K×K) per element, identity 1 (per channel,
    spec §2.3), `none` 0 (spec [Inf]). The plan is built once; calls only compute norms.
    """

    def __init__(self, supernet: Supernet) -> None:
        cfg = supernet.cfg
        self.num_edges, self.num_ops = supernet.num_edges, supernet.num_ops
        reductions = reduction_layers(cfg.layers)
        C = cfg.channels
        self.convs: dict[str, list[tuple[int, int, nn.Conv2d]]] = {"normal": [], "reduce": []}
        self.constant: dict[str, Tensor] = {k: torch.zeros(self.num_edges, self.num_ops) for k in self.convs}
        for i, module in enumerate(supernet.cells):
            cell = cast("SearchCell", module)  # a supernet's cells are `SearchCell`s, their edges `MixedOp`s
            if i in reductions:
                C *= 2
            kind = "reduce" if cell.reduction else "normal"
            channels = C // cfg.partial_channels
            for e, edge in enumerate(cell.edges):
                for m, op in enumerate(cast("MixedOp", edge).ops):
                    convs = [c for c in op.modules() if isinstance(c, nn.Conv2d)]
                    if convs:
                        self.convs[kind].extend((e, m, c) for c in convs)
                    else:
                        self.constant[kind][e, m] += channels * _fixed_norm_per_channel(op)

    @torch.no_grad()
    def __call__(self) -> dict[str, Tensor]:
        out = {}
        for kind, convs in self.convs.items():
            device = convs[0][2].weight.device if convs else torch.device("cpu")
            table = self.constant[kind].to(device).clone()
            for e, m, conv in convs:
                w = conv.quantized_weight() if isinstance(conv, QuantConv2d) else conv.weight
                table[e, m] += w.float().pow(2).sum()
            out[kind] = table
        return out


def _fixed_norm_per_channel(op: nn.Module) -> float:
    """‖w_m‖² per channel of an op without convolution weights."""
    if isinstance(op, Zero):
        return 0.0
    for module in op.modules():
        if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            k = module.kernel_size
            return pooling_norm_per_channel(k if isinstance(k, int) else k[0])
    return IDENTITY_NORM_PER_CHANNEL
