"""`profile_genotype`: published counts and the wiring of data set, family and policy."""

from __future__ import annotations

import pytest

from binas.errors import ConfigError
from binas.genotype import get_genotype
from binas.metrics import profile_genotype, profile_model
from binas.nets import Network
from binas.quant.policy import BinarizationPolicy

#: DARTS_V2 on CIFAR-10 (C=36, 20 cells): 3,349,342 parameters, DARTS's published 3.3M.
DARTS_V2_CIFAR_PARAMS = 3349342


def test_darts_v2_cifar_param_count_matches_darts() -> None:
    p = profile_genotype(
        get_genotype("darts-v2"),
        dataset="cifar10",
        family="darts",
        policy=BinarizationPolicy.real(),
        channels=36,
        layers=20,
        num_classes=10,
    )
    assert p.params == DARTS_V2_CIFAR_PARAMS
    assert p.bops == 0 and p.ops == p.flops
    assert p.memory_mbit == pytest.approx(32 * DARTS_V2_CIFAR_PARAMS / 1e6)
    assert p.input_size == (1, 3, 32, 32)


TINY = {"channels": 4, "layers": 3}


@pytest.mark.parametrize("family", ["darts", "dcp"])
def test_binary_policies_move_macs_to_bops(family: str) -> None:
    real = profile_genotype("darts-v2", family=family, policy="real", **TINY)
    released = profile_genotype("darts-v2", family=family, policy="released", **TINY)
    strict = profile_genotype("darts-v2", family=family, policy="strict", **TINY)
    lenient = profile_genotype("darts-v2", family=family, policy="released", bops_convention="lenient", **TINY)
    total = real.flops
    assert real.bops == 0
    for p in (released, strict, lenient):
        assert p.flops + p.bops == total  # the same layers, only counted differently
        assert p.params == released.params and p.memory_mbit < real.memory_mbit
    # the darts family's 1-bit sep/dil convs add a BN before the binary point-wise input (book Fig. 4.8)
    assert (released.params == real.params) == (family == "dcp")
    assert 0 < released.bops < strict.bops == lenient.bops
    # every conv outside the stem and classifier is binary in the strict policy
    real_rows = {(l.weight_bits, l.activation_bits) for l in strict.layers if l.counted_as == "FLOPs"}
    assert real_rows == {(32, 32)}


def test_imagenet_stem_and_classes() -> None:
    p = profile_genotype("dcp-nas-l", dataset="imagenet", family="dcp", policy="released", **TINY)
    assert p.input_size == (1, 3, 224, 224)
    classifier = p.layers[-1]
    # C_prev = 4 nodes * 4C channels after two reductions; 1000 classes
    assert classifier.type == "Linear" and classifier.macs == 4 * 4 * 4 * 1000
    assert [l.name for l in p.layers[:3]] == ["stem.stem0.0", "stem.stem0.3", "stem.stem1.1"]


def test_aux_head_of_a_network_is_excluded() -> None:
    g = get_genotype("darts-v2")
    with_aux = Network(g, num_classes=10, channels=4, layers=3, auxiliary=True)
    without = Network(g, num_classes=10, channels=4, layers=3)
    assert with_aux.aux_head is not None
    p_aux, p = profile_model(with_aux, (1, 3, 16, 16)), profile_model(without, (1, 3, 16, 16))
    assert p_aux.to_dict() == p.to_dict()
    aux_params = sum(q.numel() for q in with_aux.aux_head.parameters())
    assert p_aux.params == sum(q.numel() for q in with_aux.parameters()) - aux_params


def test_unknown_dataset() -> None:
    with pytest.raises(ConfigError, match="mnist"):
        profile_genotype("darts-v2", dataset="mnist", **TINY)  # type: ignore[arg-type]
