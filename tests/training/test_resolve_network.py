"""`resolve_network`: a zoo genotype trains with its own family and binarizer unless the config names one."""

from __future__ import annotations

import dataclasses

import pytest

from binas.config.schema import RunConfig
from binas.workflows.train import resolve_network


@pytest.mark.parametrize(
    "genotype, family, quantizer",
    [
        ("dcp-nas-l", "dcp", "learned_scale"),  # the release's MConv
        ("darts-v2", "darts", "mean_abs"),
    ],
)
def test_zoo_genotype_brings_its_family_and_binarizer(genotype: str, family: str, quantizer: str) -> None:
    cfg = resolve_network(RunConfig(), genotype)
    assert cfg.train.net.family == family and cfg.space.weight_quantizer == quantizer
    assert cfg.space.binary_policy().weight_quantizer == quantizer


def test_an_explicit_binarizer_wins_over_the_zoo_one() -> None:
    cfg = RunConfig()
    cfg = dataclasses.replace(cfg, space=dataclasses.replace(cfg.space, weight_quantizer="mean_abs"))
    assert resolve_network(cfg, "dcp-nas-l").space.weight_quantizer == "mean_abs"
    assert RunConfig().space.binary_policy().weight_quantizer == "mean_abs"  # null outside the zoo
