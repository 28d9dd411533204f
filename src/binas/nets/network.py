"""Networks built from a genotype, real or binary, for retraining, evaluation and transfer.

One `Network` class covers DARTS's `NetworkCIFAR` and `NetworkImageNet`: they differ only in the stem
(`cifar`: one stride-1 conv; `imagenet`: three stride-2 convs, spec §2.4) and the auxiliary head's input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor, nn

from binas.errors import ShapeError
from binas.quant.policy import BinarizationPolicy
from binas.space.ops import OP_FAMILIES, build_op
from binas.space.stems import build_stem, reduction_layers

if TYPE_CHECKING:
    from binas.genotype import Genotype

#: Channels of DARTS's auxiliary head (Szegedy et al.-style head used by DARTS).
AUX_HIDDEN, AUX_OUT = 128, 768


def drop_path(x: Tensor, drop_prob: float) -> Tensor:
    """Zero whole samples of a branch with probability `drop_prob`, rescale the rest (DARTS, FractalNet)."""
    keep = 1.0 - drop_prob
    mask = torch.bernoulli(torch.full((x.shape[0], 1, 1, 1), keep, device=x.device, dtype=x.dtype))
    return x / keep * mask


class NetworkOutput(NamedTuple):
    """Everything one forward pass gives: logits, auxiliary logits, and the last cell's features
    (the "last conv layer" feature map of the CP-NAS kernel loss, spec §4.3)."""

    logits: Tensor
    aux_logits: Tensor | None
    features: Tensor


class EvalCell(nn.Module):
    """A fixed cell: each intermediate node sums two ops applied to earlier nodes (the genotype's pairs)."""

    def __init__(
        self,
        genotype: Genotype,
        C_prev_prev: int,
        C_prev: int,
        C: int,
        *,
        reduction: bool,
        reduction_prev: bool,
        family: str,
        policy: BinarizationPolicy,
    ) -> None:
        super().__init__()
        fam = OP_FAMILIES.get(family)
        self.reduction = reduction
        self.preprocess0 = (
            fam.factorized_reduce(C_prev_prev, C, True, policy)
            if reduction_prev
            else fam.preprocess(C_prev_prev, C, True, policy)
        )
        self.preprocess1 = fam.preprocess(C_prev, C, True, policy)
        pairs = genotype.reduce if reduction else genotype.normal
        self.concat = tuple(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.indices = tuple(index for _, index in pairs)
        self.ops = nn.ModuleList(
            build_op(name, C, 2 if reduction and index < 2 else 1, family=family, policy=policy, affine=True)
            for name, index in pairs
        )
        self.multiplier = len(self.concat)

    def forward(self, s0: Tensor, s1: Tensor, drop_prob: float = 0.0) -> Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(len(self.ops) // 2):
            total = None
            for j in (2 * i, 2 * i + 1):
                op = self.ops[j]
                h = op(states[self.indices[j]])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary classifier. Adaptive 2x2 pooling replaces the fixed 5x5 pool so it fits any
    input size (on 8x8 CIFAR maps it gives the same 2x2 output as DARTS's AvgPool(5, stride 3))."""

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(C, AUX_HIDDEN, 1, bias=False),
            nn.BatchNorm2d(AUX_HIDDEN),
            nn.ReLU(inplace=True),
            nn.Conv2d(AUX_HIDDEN, AUX_OUT, 2, bias=False),
            nn.BatchNorm2d(AUX_OUT),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(AUX_OUT, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


class Network(nn.Module):
    """stem -> cells from a genotype -> global pool -> linear (stem and classifier always real).

    Args:
        genotype: the cell architecture.
        num_classes, in_channels: data shape.
        channels, layers: initial width C and number of cells; reductions at 1/3 and 2/3 of the depth.
        stem: `cifar` (stride 1) or `imagenet` (stride 8, spec §2.4).
        family: op family, `darts` or `dcp`.
        policy: which cell convs are binary; `BinarizationPolicy.real()` for a real network.
        auxiliary: add DARTS's auxiliary head after the second reduction (training only).
        drop_path_prob: drop-path probability of cell branches (set per epoch by the trainer).
    """

    def __init__(
        self,
        genotype: Genotype,
        *,
        num_classes: int,
        in_channels: int = 3,
        channels: int = 36,
        layers: int = 20,
        stem: str = "cifar",
        stem_multiplier: int = 3,
        family: str = "darts",
        policy: BinarizationPolicy | None = None,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
    ) -> None:
        super().__init__()
        self.genotype = genotype
        self.policy = policy or BinarizationPolicy.real()
        self.in_channels = in_channels
        self.drop_path_prob = drop_path_prob
        self.stem, C_pp, C_p, reduction_prev = build_stem(stem, in_channels, channels, stem_multiplier, family=family)
        C = channels
        reductions = reduction_layers(layers)
        self.cells = nn.ModuleList()
        self.stage_ends: list[int] = []  # index of the last cell of each resolution stage
        self.aux_head: AuxiliaryHead | None = None
        cell_channels: list[int] = []
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                C *= 2
                if i > 0:
                    self.stage_ends.append(i - 1)
            cell = EvalCell(
                genotype,
                C_pp,
                C_p,
                C,
                reduction=reduction,
                reduction_prev=reduction_prev,
                family=family,
                policy=self.policy,
            )
            self.cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, cell.multiplier * C
            cell_channels.append(C_p)
            if auxiliary and i == reductions[1]:
                self.aux_head = AuxiliaryHead(C_p, num_classes)
                self.aux_index = i
        self.stage_ends.append(layers - 1)
        self.stage_channels = [cell_channels[i] for i in self.stage_ends]
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"expected input of shape (batch, {self.in_channels}, H, W), got {tuple(x.shape)}")

    def forward_all(self, x: Tensor) -> NetworkOutput:
        """Logits, auxiliary logits (training with an aux head, else None) and the last cell's feature map."""
        self._check_input(x)
        s0, s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if self.aux_head is not None and self.training and i == self.aux_index:
                aux = self.aux_head(s1)
        return NetworkOutput(self.classifier(self.global_pooling(s1).flatten(1)), aux, s1)

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Logits, and the auxiliary head's logits when it exists and the model is training."""
        out = self.forward_all(x)
        return out.logits, out.aux_logits

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_aux(x)[0]

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Feature maps at the end of each resolution stage (strides 8/16/32 with the ImageNet stem)."""
        self._check_input(x)
        s0, s1 = self.stem(x)
        feats = []
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i in self.stage_ends:
                feats.append(s1)
        return feats
