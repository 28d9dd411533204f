"""Mobile-space costs: per-block profiler costs add up to the derived network's profile."""

from __future__ import annotations

import pytest

from binas.generation.mobile_costs import mobile_costs
from binas.genotype.mobilenet import MobileGenotype
from binas.metrics.complexity import profile_model
from binas.nets.mobilenet import MobileNetwork
from binas.quant.policy import BinarizationPolicy
from binas.space.mobilenet import MobileNetConfig

TINY = MobileNetConfig(width_mult=0.25, depth=2)


@pytest.mark.parametrize("policy", ["real", "released"])
def test_fixed_plus_block_costs_equal_the_network_profile(policy):
    pol = BinarizationPolicy.preset(policy)
    costs = mobile_costs(TINY, num_classes=10, in_channels=3, image_size=16, policy=pol)
    for choice in ([0] * 11, [6] * 11, [5, 6, 1, 6, 2, 6, 3, 6, 4, 6, 0]):
        genotype = MobileGenotype.from_indices(costs.candidates, choice)
        prof = profile_model(MobileNetwork(genotype, TINY, num_classes=10, policy=pol), (1, 3, 16, 16))
        for metric in ("flops", "ops", "params"):
            assert costs.total(metric, choice) == pytest.approx(float(getattr(prof, metric)))
    assert (costs.blocks["flops"][:, :6] > 0).all()
    if policy == "released":  # 1x1 convs are 1-bit x 1-bit: their MACs count as BOPs / 64 in OPs
        real = mobile_costs(TINY, num_classes=10, in_channels=3, image_size=16, policy=BinarizationPolicy.real())
        assert (costs.blocks["ops"][:, :6] < real.blocks["flops"][:, :6]).all()
        assert costs.blocks["params"].tolist() == real.blocks["params"].tolist()
