"""Published genotypes of the DARTS cell space, as data with their sources, loadable by name.

Each entry also records the network it was evaluated in (the op family of `space.ops`, the weight
binarizer of its 1-bit version and the initial channels / cell count for CIFAR and ImageNet), so
`binas train --genotype darts-v2` and `binas profile dcp-nas-l` have sensible defaults without a
config. Names are registry keys: `get_genotype("darts-v2")`.
"""

from __future__ import annotations

from dataclasses import dataclass

from binas.genotype.genotype import Genotype
from binas.registry import Registry

#: DARTS evaluation networks (Liu et al., 2019, §3.3): CIFAR-10 20 cells, C=36; ImageNet mobile
#: setting 14 cells, C=48. PC-DARTS (Xu et al., 2020) evaluates with the same settings.
DARTS_CIFAR_CHANNELS, DARTS_CIFAR_LAYERS = 36, 20
DARTS_IMAGENET_CHANNELS, DARTS_IMAGENET_LAYERS = 48, 14
#: DCP-NAS-L on ImageNet: `--init_channels 108 --layers 10` in the release's README (spec §2.4).
DCP_L_IMAGENET_CHANNELS, DCP_L_IMAGENET_LAYERS = 108, 10
CONCAT_4_STEPS = (2, 3, 4, 5)


@dataclass(frozen=True)
class ZooEntry:
    """A published genotype plus the network settings it was evaluated with and where it comes from."""

    genotype: Genotype
    family: str
    cifar_channels: int
    cifar_layers: int
    imagenet_channels: int
    imagenet_layers: int
    source: str
    #: Weight quantizer (`binas.quant.quantizers.WEIGHT_QUANTIZERS`) of the 1-bit network as published.
    weight_quantizer: str = "mean_abs"


GENOTYPES: Registry[ZooEntry] = Registry("genotype")

# Pairs are written two per line: one line per intermediate node (2, 3, 4, 5).
# fmt: off

GENOTYPES.register(
    "darts-v1",
    ZooEntry(
        # DARTS first-order search result: `DARTS_V1` in quark0/darts cnn/genotypes.py.
        genotype=Genotype(
            normal=(
                ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
                ("skip_connect", 0), ("sep_conv_3x3", 1),
                ("skip_connect", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 0), ("skip_connect", 2),
            ),
            normal_concat=CONCAT_4_STEPS,
            reduce=(
                ("max_pool_3x3", 0), ("max_pool_3x3", 1),
                ("skip_connect", 2), ("max_pool_3x3", 0),
                ("max_pool_3x3", 0), ("skip_connect", 2),
                ("skip_connect", 2), ("avg_pool_3x3", 0),
            ),
            reduce_concat=CONCAT_4_STEPS,
        ),
        family="darts",
        cifar_channels=DARTS_CIFAR_CHANNELS,
        cifar_layers=DARTS_CIFAR_LAYERS,
        imagenet_channels=DARTS_IMAGENET_CHANNELS,
        imagenet_layers=DARTS_IMAGENET_LAYERS,
        source="Liu, Simonyan, Yang. DARTS: Differentiable Architecture Search. ICLR 2019 "
        "(first order); github.com/quark0/darts cnn/genotypes.py DARTS_V1",
    ),
)

GENOTYPES.register(
    "darts-v2",
    ZooEntry(
        # DARTS second-order search result (the paper's "DARTS (second order)" cell): `DARTS_V2`.
        genotype=Genotype(
            normal=(
                ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 1), ("skip_connect", 0),
                ("skip_connect", 0), ("dil_conv_3x3", 2),
            ),
            normal_concat=CONCAT_4_STEPS,
            reduce=(
                ("max_pool_3x3", 0), ("max_pool_3x3", 1),
                ("skip_connect", 2), ("max_pool_3x3", 1),
                ("max_pool_3x3", 0), ("skip_connect", 2),
                ("skip_connect", 2), ("max_pool_3x3", 1),
            ),
            reduce_concat=CONCAT_4_STEPS,
        ),
        family="darts",
        cifar_channels=DARTS_CIFAR_CHANNELS,
        cifar_layers=DARTS_CIFAR_LAYERS,
        imagenet_channels=DARTS_IMAGENET_CHANNELS,
        imagenet_layers=DARTS_IMAGENET_LAYERS,
        source="Liu, Simonyan, Yang. DARTS: Differentiable Architecture Search. ICLR 2019 "
        "(second order); github.com/quark0/darts cnn/genotypes.py DARTS_V2",
    ),
)

GENOTYPES.register(
    "pc-darts",
    ZooEntry(
        # PC-DARTS CIFAR-10 search result: `PC_DARTS_cifar` in yuhuixu1993/PC-DARTS genotypes.py.
        genotype=Genotype(
            normal=(
                ("sep_conv_3x3", 1), ("skip_connect", 0),
                ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
                ("sep_conv_5x5", 0), ("sep_conv_3x3", 1),
                ("avg_pool_3x3", 0), ("dil_conv_3x3", 1),
            ),
            normal_concat=CONCAT_4_STEPS,
            reduce=(
                ("sep_conv_5x5", 1), ("max_pool_3x3", 0),
                ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
                ("sep_conv_3x3", 0), ("sep_conv_3x3", 3),
                ("sep_conv_3x3", 1), ("sep_conv_3x3", 2),
            ),
            reduce_concat=CONCAT_4_STEPS,
        ),
        family="darts",
        cifar_channels=DARTS_CIFAR_CHANNELS,
        cifar_layers=DARTS_CIFAR_LAYERS,
        imagenet_channels=DARTS_IMAGENET_CHANNELS,
        imagenet_layers=DARTS_IMAGENET_LAYERS,
        source="Xu et al. PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture "
        "Search. ICLR 2020; github.com/yuhuixu1993/PC-DARTS genotypes.py PC_DARTS_cifar",
    ),
)

GENOTYPES.register(
    "dcp-nas-l",
    ZooEntry(
        # The DCP-NAS release's `DDPNAS_MCN_2` (utils/genotypes_m.py), the genotype of "DCP_NAS_Large";
        # the release lists pairs per node (spec §2.4), flattened here in order, one node per line.
        genotype=Genotype(
            normal=(
                ("sep_conv_5x5", 1), ("max_pool_3x3", 0),
                ("dil_conv_3x3", 2), ("skip_connect", 0),
                ("sep_conv_3x3", 3), ("avg_pool_3x3", 1),
                ("dil_conv_3x3", 4), ("avg_pool_3x3", 3),
            ),
            normal_concat=CONCAT_4_STEPS,
            reduce=(
                ("max_pool_3x3", 0), ("sep_conv_3x3", 1),
                ("dil_conv_3x3", 1), ("sep_conv_3x3", 0),
                ("max_pool_3x3", 1), ("dil_conv_5x5", 2),
                ("dil_conv_5x5", 2), ("sep_conv_5x5", 1),
            ),
            reduce_concat=CONCAT_4_STEPS,
        ),
        family="dcp",
        # CIFAR-10 evaluation network of DCP-NAS is unknown (spec §2.4); DARTS's setting is the default.
        cifar_channels=DARTS_CIFAR_CHANNELS,
        cifar_layers=DARTS_CIFAR_LAYERS,
        imagenet_channels=DCP_L_IMAGENET_CHANNELS,
        imagenet_layers=DCP_L_IMAGENET_LAYERS,
        source="Li et al. DCP-NAS: Discrepant Child-Parent Neural Architecture Search for 1-bit CNNs. "
        "IJCV, arXiv:2306.15390; github.com/YanjingLi0202/DCP-NAS utils/genotypes_m.py DDPNAS_MCN_2 "
        "(spec §2.4)",
        # The release's convs are all `MConv` (binary/MConv_new.py): 0.02 * sign(W) * |M|, M learned.
        weight_quantizer="learned_scale",
    ),
)

def _released_entry(genotype: Genotype, release_name: str) -> ZooEntry:
    """A genotype of the release's `utils/genotypes_m.py` with the release's only recipe (dcp, MConv)."""
    return ZooEntry(
        genotype=genotype, family="dcp", cifar_channels=DARTS_CIFAR_CHANNELS, cifar_layers=DARTS_CIFAR_LAYERS,
        imagenet_channels=DCP_L_IMAGENET_CHANNELS, imagenet_layers=DCP_L_IMAGENET_LAYERS,
        source="Li et al. DCP-NAS, IJCV, arXiv:2306.15390; github.com/YanjingLi0202/DCP-NAS "
        f"utils/genotypes_m.py {release_name} (how it was found and evaluated is not in the release)",
        weight_quantizer="learned_scale",
    )


# The release's two other genotypes, `Tangent_1` and `Tangent_2` (utils/genotypes_m.py, registered in its
# `genotype_array`). The release says nothing about how they were found or evaluated; by their name they
# are probably other DCP-NAS (tangent propagation) search results (spec §2.4, [Inf]). They get the
# release's only training recipe: the dcp op structure with MConv, C=108 and 10 cells on ImageNet.
GENOTYPES.register(
    "dcp-nas-tangent-1",
    _released_entry(
        Genotype(
            normal=(
                ("sep_conv_3x3", 1), ("max_pool_3x3", 0),
                ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
                ("sep_conv_5x5", 3), ("max_pool_3x3", 2),
                ("sep_conv_5x5", 4), ("max_pool_3x3", 0),
            ),
            normal_concat=CONCAT_4_STEPS,
            reduce=(
                ("max_pool_3x3", 0), ("sep_conv_5x5", 1),
                ("dil_conv_3x3", 1), ("dil_conv_5x5", 2),
                ("skip_connect", 0), ("dil_conv_5x5", 3),
                ("sep_conv_5x5", 2), ("skip_connect", 4),
            ),
            reduce_concat=CONCAT_4_STEPS,
        ),
        "Tangent_1",
    ),
)

GENOTYPES.register(
    "dcp-nas-tangent-2",
    _released_entry(
        Genotype(
            normal=(
                ("skip_connect", 0), ("dil_conv_3x3", 1),
                ("sep_conv_3x3", 0), ("sep_conv_3x3", 2),
                ("avg_pool_3x3", 2), ("sep_conv_3x3", 3),
                ("max_pool_3x3", 0), ("dil_conv_5x5", 4),
            ),
            normal_concat=CONCAT_4_STEPS,
            reduce=(
                ("dil_conv_3x3", 0), ("dil_conv_5x5", 1),
                ("max_pool_3x3", 1), ("dil_conv_5x5", 2),
                ("dil_conv_3x3", 1), ("avg_pool_3x3", 2),
                ("sep_conv_3x3", 1), ("dil_conv_5x5", 3),
            ),
            reduce_concat=CONCAT_4_STEPS,
        ),
        "Tangent_2",
    ),
)

# fmt: on


def get_entry(name: str) -> ZooEntry:
    """The zoo entry `name`; an unknown name raises `RegistryError` listing the known ones."""
    return GENOTYPES.get(name)


def get_genotype(name: str) -> Genotype:
    """The published genotype `name` (see `list_genotypes()`)."""
    return GENOTYPES.get(name).genotype


def list_genotypes() -> list[str]:
    """Names of the genotypes in the zoo, in registration order."""
    return GENOTYPES.names()
