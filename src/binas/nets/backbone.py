"""`backbone`: a searched network as a feature extractor for detection and re-identification heads.

The stem and cells of a `Network`, without its classifier, returning the feature map at the end of each
resolution stage: strides 8/16/32 with the ImageNet stem (4x4 -> C, then two reductions), 1/2/4 with the
CIFAR stem. `out_channels` lists their channel counts, so a torchvision `FeaturePyramidNetwork`
(`in_channels_list=backbone.out_channels`) or a pooled embedding head can sit on top. DCP-NAS reports
transfer to re-ID and detection (spec §7), without recoverable details.

A reference network's name (`birealnet18`, `reactnet-a`: `binas.nets.reference`) gives a
`ReferenceBackbone` with the same contract: its last three resolution stages, at strides 8/16/32 with the
published (`imagenet`) stem, 4/8/16 with the `small` stem (stride 2) and 2/4/8 with the `cifar` stem
(Bi-Real Net-18; ReActNet-A's published stem is already stride 2, so `small` = `imagenet` and `cifar`
gives 4/8/16). `strides` says which.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, cast

from torch import Tensor, nn

from binas.errors import ConfigError
from binas.genotype import GENOTYPES, Genotype, parse_genotype
from binas.nets.reference import build_reference, is_reference
from binas.nets.reference_base import ReferenceNetwork
from binas.quant.policy import BinarizationPolicy

if TYPE_CHECKING:
    from binas.nets.network import Network

#: Total stride of each stem (spec §2.4: the ImageNet stem has three stride-2 convs).
STEM_STRIDES = {"imagenet": 8, "cifar": 1}
#: Stride growth per stage: each reduction cell halves the resolution.
REDUCTION_FACTOR = 2
#: DARTS's ImageNet (mobile) network: C=48, 14 cells (Liu et al., 2019).
DEFAULT_CHANNELS, DEFAULT_LAYERS = 48, 14


class Backbone(nn.Module):
    """Stem + cells of a network; `forward(x)` returns an ordered dict `{"0": C3, "1": C4, "2": C5}`.

    Attributes:
        out_channels: channels of each returned map.
        strides: their strides relative to the input.
    """

    def __init__(self, network: Network, stem: str) -> None:
        super().__init__()
        self.stem = network.stem
        self.cells = network.cells
        self.stage_ends = tuple(network.stage_ends)
        self.in_channels = network.in_channels
        self.out_channels: list[int] = list(network.stage_channels)
        first = STEM_STRIDES[stem]
        self.strides: list[int] = [first * REDUCTION_FACTOR**i for i in range(len(self.out_channels))]

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        s0, s1 = self.stem(x)
        features: OrderedDict[str, Tensor] = OrderedDict()
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i in self.stage_ends:
                features[str(len(features))] = s1
        return features


class ReferenceBackbone(nn.Module):
    """Stem + stages of a reference network up to its last feature stage; the `Backbone` contract."""

    def __init__(self, network: ReferenceNetwork) -> None:
        super().__init__()
        self.stem = network.stem
        self.stages = nn.ModuleList(network.stages[: max(network.feature_stages) + 1])
        self.feature_stages = tuple(network.feature_stages)
        self.in_channels = network.in_channels
        self.out_channels: list[int] = network.feature_channels
        self.strides: list[int] = network.feature_strides

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        x = self.stem(x)
        features: OrderedDict[str, Tensor] = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.feature_stages:
                features[str(len(features))] = x
        return features


def backbone(
    genotype: str | Path | Genotype,
    *,
    channels: int | None = None,
    layers: int = DEFAULT_LAYERS,
    stem: str = "imagenet",
    family: str | None = None,
    policy: BinarizationPolicy | str = "released",
    in_channels: int = 3,
) -> Backbone | ReferenceBackbone:
    """A freshly initialised backbone of `genotype` (a zoo name, genotype.json, a run directory, ...) or of
    a reference network (`birealnet18`, `reactnet-a`).

    `channels` defaults to 48 for a genotype (with `layers` cells), to the published width for a reference
    network (whose depth is fixed: `layers` and `family` do not apply). `family` defaults to the zoo
    entry's (else `darts`); `policy` is a `BinarizationPolicy` or a preset name (`real`, `released`,
    `strict`; a reference network is the published 1-bit network under both `released` and `strict`).
    For trained weights use `backbone_from_checkpoint`.
    """
    from binas.nets.network import Network

    if isinstance(policy, str):
        policy = BinarizationPolicy.preset(policy)
    if is_reference(genotype):
        assert isinstance(genotype, str)
        ref = build_reference(
            genotype, num_classes=1, in_channels=in_channels, channels=channels, stem=stem, policy=policy
        )
        return ReferenceBackbone(ref)
    if stem not in STEM_STRIDES:
        raise ConfigError(f"unknown stem '{stem}'; choose one of: {', '.join(STEM_STRIDES)}")
    if layers < 3:
        raise ConfigError(f"a backbone needs at least 3 cells (one per stage), got {layers}")
    if family is None:
        family = GENOTYPES.get(genotype).family if isinstance(genotype, str) and genotype in GENOTYPES else "darts"
    net = Network(
        parse_genotype(genotype),
        num_classes=1,
        in_channels=in_channels,
        channels=channels or DEFAULT_CHANNELS,
        layers=layers,
        stem=stem,
        family=family,
        policy=policy,
    )
    return Backbone(net, stem)


def backbone_from_checkpoint(path: str | Path) -> Backbone | ReferenceBackbone:
    """The backbone of a trained network (a binas model checkpoint or training run directory), weights loaded."""
    from binas.nets.model_file import load_model

    model, spec, _ = load_model(path)
    if isinstance(model, ReferenceNetwork):
        return ReferenceBackbone(model)
    return Backbone(cast("Network", model), spec.stem)  # `load_model` builds a `Network` (`ModelSpec.build`)
