"""The zoo of published genotypes."""

from __future__ import annotations

import pytest

from binas.errors import RegistryError
from binas.genotype import GENOTYPES, Genotype, ZooEntry, get_entry, get_genotype, list_genotypes
from binas.quant.quantizers import WEIGHT_QUANTIZERS


def test_expected_names() -> None:
    assert {"darts-v1", "darts-v2", "pc-darts", "dcp-nas-l", "dcp-nas-tangent-1", "dcp-nas-tangent-2"} <= set(
        list_genotypes()
    )


@pytest.mark.parametrize("name", list_genotypes())
def test_every_entry_is_valid_data(name: str) -> None:
    entry = get_entry(name)
    assert isinstance(entry, ZooEntry)
    assert isinstance(entry.genotype, Genotype) and entry.genotype is get_genotype(name)
    assert entry.genotype.steps == 4
    assert entry.genotype.normal_concat == entry.genotype.reduce_concat == (2, 3, 4, 5)
    assert all(op != "none" for op, _ in entry.genotype.normal + entry.genotype.reduce)
    assert entry.family in ("darts", "dcp")
    assert min(entry.cifar_channels, entry.cifar_layers, entry.imagenet_channels, entry.imagenet_layers) > 0
    assert "github.com" in entry.source
    assert entry.weight_quantizer in WEIGHT_QUANTIZERS
    assert Genotype.from_json(entry.genotype.to_json()) == entry.genotype


def test_network_settings() -> None:
    darts, dcp = get_entry("darts-v2"), get_entry("dcp-nas-l")
    assert (darts.family, darts.cifar_channels, darts.cifar_layers) == ("darts", 36, 20)
    assert (darts.imagenet_channels, darts.imagenet_layers) == (48, 14)
    assert (dcp.family, dcp.imagenet_channels, dcp.imagenet_layers) == ("dcp", 108, 10)
    assert get_entry("pc-darts").family == "darts"


def test_dcp_nas_l_is_flattened_in_node_order() -> None:
    g = get_genotype("dcp-nas-l")
    assert g.node_inputs("normal")[2] == (("sep_conv_5x5", 1), ("max_pool_3x3", 0))
    assert g.node_inputs("normal")[5] == (("dil_conv_3x3", 4), ("avg_pool_3x3", 3))
    assert g.node_inputs("reduce")[4] == (("max_pool_3x3", 1), ("dil_conv_5x5", 2))


def test_release_genotypes_carry_the_release_network() -> None:
    # utils/genotypes_m.py of YanjingLi0202/DCP-NAS; all three are trained with MConv (learned scale).
    for name, release_name in [
        ("dcp-nas-l", "DDPNAS_MCN_2"),
        ("dcp-nas-tangent-1", "Tangent_1"),
        ("dcp-nas-tangent-2", "Tangent_2"),
    ]:
        entry = get_entry(name)
        assert (entry.family, entry.weight_quantizer) == ("dcp", "learned_scale")
        assert (entry.imagenet_channels, entry.imagenet_layers) == (108, 10)
        assert "YanjingLi0202/DCP-NAS utils/genotypes_m.py " + release_name in entry.source
    assert {get_entry(n).weight_quantizer for n in ("darts-v1", "darts-v2", "pc-darts")} == {"mean_abs"}


def test_tangent_genotypes_are_flattened_in_node_order() -> None:
    t1, t2 = get_genotype("dcp-nas-tangent-1"), get_genotype("dcp-nas-tangent-2")
    assert t1.node_inputs("normal")[2] == (("sep_conv_3x3", 1), ("max_pool_3x3", 0))
    assert t1.node_inputs("reduce")[5] == (("sep_conv_5x5", 2), ("skip_connect", 4))
    assert t2.node_inputs("normal")[5] == (("max_pool_3x3", 0), ("dil_conv_5x5", 4))
    assert t2.node_inputs("reduce")[3] == (("max_pool_3x3", 1), ("dil_conv_5x5", 2))


def test_distinct_genotypes() -> None:
    ids = [get_genotype(name).archid for name in list_genotypes()]
    assert len(set(ids)) == len(ids)


def test_unknown_name() -> None:
    with pytest.raises(RegistryError, match="darts-v2"):
        get_genotype("darts-v3")
    assert "darts-v3" not in GENOTYPES
