"""A derived network of DDPNAS's MobileNetV2-style block space: one candidate block per position."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from binas.genotype.mobilenet import MobileGenotype
from binas.quant.policy import BinarizationPolicy
from binas.space.mobilenet import FixedBlock, MobileBackbone, MobileNetConfig


class MobileNetwork(MobileBackbone):
    """A derived mobile network from a `MobileGenotype` (one candidate per block), real or binary."""

    def __init__(
        self,
        genotype: MobileGenotype | str | Path,
        cfg: MobileNetConfig,
        *,
        num_classes: int,
        in_channels: int = 3,
        policy: BinarizationPolicy | None = None,
    ) -> None:
        policy = policy or BinarizationPolicy.real()
        super().__init__(cfg, num_classes=num_classes, in_channels=in_channels, policy=policy)
        if not isinstance(genotype, MobileGenotype):
            genotype = MobileGenotype.parse(genotype)
        genotype.check_against(cfg)
        self.genotype = genotype
        self.blocks = nn.ModuleList(FixedBlock(s, c, policy) for s, c in zip(self.specs, genotype.blocks))

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        x = self.first_block(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return self.head(x)
