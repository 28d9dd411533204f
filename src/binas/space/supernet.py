"""The weight-sharing supernet of the DARTS cell space. Architecture parameters live outside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from binas.errors import ShapeError
from binas.quant.policy import BinarizationPolicy
from binas.space.cell import SearchCell
from binas.space.primitives import PRIMITIVES, STEPS
from binas.space.stems import build_stem, reduction_layers
from binas.space.topology import CellTopology


@dataclass(frozen=True)
class SupernetConfig:
    """Shape of the search supernet (defaults: DARTS/PC-DARTS CIFAR-10 search, spec §2.4 [Inf]).

    Attributes:
        channels: initial channel count C.
        layers: number of cells; reductions at 1/3 and 2/3 of the depth.
        steps: intermediate nodes per cell.
        multiplier: intermediate nodes concatenated into the cell output.
        stem_multiplier: CIFAR stem width = stem_multiplier * C.
        family: op family, `darts` or `dcp`.
        partial_channels: PC-DARTS K (1 = every channel goes through the ops).
        stem: `cifar` (stride 1) or `imagenet` (stride 8).
    """

    channels: int = 16
    layers: int = 8
    steps: int = STEPS
    multiplier: int = 4
    stem_multiplier: int = 3
    family: str = "darts"
    partial_channels: int = 1
    stem: str = "cifar"


def _active(weights: Tensor) -> list[list[int]]:
    """Op indices to run on each edge: all of them when the weights need a gradient, else those with a
    non-zero weight (one host sync for the whole cell type)."""
    if weights.requires_grad:
        return [list(range(weights.shape[1]))] * weights.shape[0]
    return [[m for m, w in enumerate(row) if w != 0.0] for row in weights.detach().cpu().tolist()]


class Supernet(nn.Module):
    """stem -> cells -> global pool -> linear; every cell edge is a `MixedOp`."""

    def __init__(
        self,
        cfg: SupernetConfig,
        *,
        num_classes: int,
        in_channels: int = 3,
        policy: BinarizationPolicy | None = None,
        primitives: Sequence[str] = PRIMITIVES,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.policy = policy or BinarizationPolicy.real()
        self.primitives = tuple(primitives)
        self.topology = CellTopology(cfg.steps)
        self.in_channels = in_channels
        self.stem, C_pp, C_p, reduction_prev = build_stem(
            cfg.stem, in_channels, cfg.channels, cfg.stem_multiplier, family=cfg.family
        )
        C = cfg.channels
        reductions = reduction_layers(cfg.layers)
        cells = []
        for i in range(cfg.layers):
            reduction = i in reductions
            if reduction:
                C *= 2
            cell = SearchCell(
                self.topology,
                C_pp,
                C_p,
                C,
                reduction=reduction,
                reduction_prev=reduction_prev,
                family=cfg.family,
                policy=self.policy,
                primitives=self.primitives,
                partial_channels=cfg.partial_channels,
                multiplier=cfg.multiplier,
            )
            cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, cfg.multiplier * C
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)

    @property
    def num_edges(self) -> int:
        return self.topology.num_edges

    @property
    def num_ops(self) -> int:
        return len(self.primitives)

    def forward(
        self,
        x: Tensor,
        normal: Tensor,
        reduce: Tensor,
        *,
        edge_normal: Tensor | None = None,
        edge_reduce: Tensor | None = None,
    ) -> Tensor:
        """Logits for `x` under the architecture given by `normal` / `reduce`.

        Each of `normal`, `reduce` is either a float (E, M) tensor of mixing weights (ops with weight
        exactly 0 are skipped unless the weights require a gradient), or an integer (E,) tensor of op
        indices: a single-path forward in which only the sampled op of each edge runs, with weight 1.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"expected input of shape (batch, {self.in_channels}, H, W), got {tuple(x.shape)}")
        plan: dict[str, tuple[Tensor | None, list[list[int]]]] = {}
        for kind, w in (("normal", normal), ("reduce", reduce)):
            if not w.is_floating_point():
                if tuple(w.shape) != (self.num_edges,):
                    raise ShapeError(f"{kind} op indices must have shape ({self.num_edges},), got {tuple(w.shape)}")
                plan[kind] = (None, [[int(m)] for m in w.tolist()])
            else:
                expected = (self.num_edges, self.num_ops)
                if tuple(w.shape) != expected:
                    raise ShapeError(f"{kind} weights must have shape {expected}, got {tuple(w.shape)}")
                plan[kind] = (w, _active(w))
        s0, s1 = self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            weights, active = plan[kind]
            edge_w = edge_reduce if cell.reduction else edge_normal
            s0, s1 = s1, cell(s0, s1, weights, active, edge_w)
        return self.classifier(self.global_pooling(s1).flatten(1))
