"""The mixed operation on one edge: a weighted sum of candidate ops (DARTS Eq. 2, DCP-NAS Eq. 4.28).

With `partial_channels = K > 1` it is PC-DARTS's partial-channel mixed op (Xu et al., ICLR 2020):
only 1/K of the channels go through the ops, the rest bypass them, then channels are shuffled.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from binas.quant.policy import BinarizationPolicy
from binas.space.ops import Zero, build_op
from binas.space.primitives import PRIMITIVES


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave `groups` channel groups (ShuffleNet), so bypassed channels get their turn."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class MixedOp(nn.Module):
    """All candidate ops of one edge; `forward(x, weights, active)` sums the active ones."""

    def __init__(
        self,
        C: int,
        stride: int,
        *,
        family: str = "darts",
        policy: BinarizationPolicy | None = None,
        primitives: Sequence[str] = PRIMITIVES,
        partial_channels: int = 1,
    ) -> None:
        super().__init__()
        if C % partial_channels:
            raise ValueError(f"channels {C} not divisible by partial_channels {partial_channels}")
        self.stride = stride
        self.k = partial_channels
        self.ops = nn.ModuleList(
            build_op(name, C // partial_channels, stride, family=family, policy=policy, affine=False, in_search=True)
            for name in primitives
        )
        self.bypass_pool = nn.MaxPool2d(2, 2, ceil_mode=True) if partial_channels > 1 and stride == 2 else None
        # `none` contributes exactly zero to the sum and to every gradient: never compute it.
        self.zero_ops = frozenset(m for m, op in enumerate(self.ops) if isinstance(op, Zero))

    def forward(self, x: Tensor, weights: Tensor | None, active: Sequence[int]) -> Tensor:
        """Sum of `weights[m] * op_m(x)` over the op indices in `active`.

        `weights=None` means weight 1 for every active op (single-path forward of a sampled op).
        """
        xin = x[:, : x.shape[1] // self.k] if self.k > 1 else x
        out: Tensor | None = None
        for m in active:
            if m in self.zero_ops:
                continue
            y = self.ops[m](xin)
            if weights is not None:
                y = weights[m] * y
            out = y if out is None else out + y
        if out is None:  # only `none` is active on this edge
            out = self.ops[next(iter(self.zero_ops))](xin)
        if self.k == 1:
            return out
        rest = x[:, x.shape[1] // self.k :]
        if self.bypass_pool is not None:
            rest = self.bypass_pool(rest)
        return channel_shuffle(torch.cat([out, rest], dim=1), self.k)
