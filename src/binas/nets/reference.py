"""Hand-designed 1-bit reference networks the DCP-NAS and CP-NAS papers compare against, by name.

`REFERENCE_NETWORKS` maps `birealnet18` (Bi-Real Net-18, `binas.nets.birealnet`) and `reactnet-a`
(ReActNet-A, `binas.nets.reactnet`) to their classes. Wherever a genotype is accepted to build a network
(`binas train NAME`, `binas.train(cfg, NAME, ...)`, `binas.backbone(NAME)`), one of these names builds
the reference network instead; a model file records it in `ModelSpec.arch`.

Published complexity on ImageNet (224 x 224), reproduced by `binas.metrics.complexity.profile_model`
within 1.5 % (`tests/nets/test_reference.py` states each tolerance and why):

* Bi-Real Net-18: 1.68e9 BOPs, 1.39e8 FLOPs, 1.63e8 OPs (Liu et al., ECCV 2018, comparison table);
  binas: 1.676e9, 1.378e8 (only convs and linears are counted), 1.640e8.
* ReActNet-A: 4.82e9 BOPs, 0.12e8 FLOPs, 0.87e8 OPs (Liu et al., ECCV 2020, comparison table: the FLOPs
  column is in units of 1e8, so BOPs / 64 + FLOPs = 0.75e8 + 0.12e8 = 0.87e8); binas: 4.817e9, 1.186e7,
  8.71e7.

The OPs of both are also in the authors' README (liuzechun/ReActNet, "Models" table, column "FLOPs":
1.63 x 10^8 and 0.87 x 10^8).
"""

from __future__ import annotations

from typing import Protocol

from binas.nets.birealnet import BiRealNet18
from binas.nets.reactnet import ReActNetA
from binas.nets.reference_base import ReferenceNetwork
from binas.quant.policy import BinarizationPolicy
from binas.registry import Registry


class ReferenceFactory(Protocol):
    """A reference network's class: its published base width and its number of blocks."""

    published_channels: int
    blocks: int

    def __call__(
        self, *, num_classes: int, in_channels: int, channels: int, stem: str, policy: BinarizationPolicy | None
    ) -> ReferenceNetwork: ...


REFERENCE_NETWORKS: Registry[ReferenceFactory] = Registry("reference network")
REFERENCE_NETWORKS.register("birealnet18", BiRealNet18)
REFERENCE_NETWORKS.register("reactnet-a", ReActNetA)


def is_reference(name: object) -> bool:
    """Whether `name` names a reference network (and not a genotype)."""
    return isinstance(name, str) and name.strip() in REFERENCE_NETWORKS


def reference_name(name: str) -> str:
    """The registered name of a reference network (a `RegistryError` listing the names if unknown)."""
    REFERENCE_NETWORKS.get(name.strip())
    return name.strip()


def build_reference(
    name: str,
    *,
    num_classes: int,
    in_channels: int = 3,
    channels: int | None = None,
    stem: str = "imagenet",
    policy: BinarizationPolicy | None = None,
) -> ReferenceNetwork:
    """A freshly initialised reference network; `channels` None: the published width."""
    factory = REFERENCE_NETWORKS.get(name.strip())
    return factory(
        num_classes=num_classes,
        in_channels=in_channels,
        channels=channels or factory.published_channels,
        stem=stem,
        policy=policy,
    )
