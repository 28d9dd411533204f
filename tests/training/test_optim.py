"""Optimizer builders, the warm-up + cosine schedule, and the two-step phase plan."""

from __future__ import annotations

import math

import pytest
import torch

from binas.config.train import NetConfig, OptimConfig, TrainConfig
from binas.errors import CheckpointError, ConfigError
from binas.genotype import get_genotype
from binas.nets import Network
from binas.optim.builders import build_optimizer, cosine_with_warmup, param_groups
from binas.optim.two_step import init_from_previous, plan_phases
from binas.quant.policy import BinarizationPolicy


def tiny_net(policy: BinarizationPolicy) -> Network:
    return Network(get_genotype("darts-v2"), num_classes=10, channels=4, layers=3, policy=policy)


def test_weight_decay_only_on_multidimensional_weights():
    net = tiny_net(BinarizationPolicy.real())
    decay, no_decay = param_groups(net, 1e-5)
    assert decay["weight_decay"] == 1e-5 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim <= 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(net.parameters()))
    assert isinstance(build_optimizer(net, "adamw", lr=1e-3, weight_decay=0.0), torch.optim.AdamW)
    sgd = build_optimizer(net, "sgd", lr=0.025, weight_decay=3e-4, momentum=0.9)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9
    with pytest.raises(ConfigError, match="unknown optimizer"):
        build_optimizer(net, "lion", lr=1.0, weight_decay=0.0)


def test_cosine_with_warmup():
    assert cosine_with_warmup(1e-3, 1e-5, 0.0, 10) == pytest.approx(1e-3)
    assert cosine_with_warmup(1e-3, 1e-5, 10.0, 10) == pytest.approx(1e-5)
    assert cosine_with_warmup(1e-3, 0.0, 5.0, 10) == pytest.approx(0.5e-3)
    assert cosine_with_warmup(1e-3, 1e-5, 0.5, 10, warmup_epochs=2) == pytest.approx(0.25e-3)
    assert cosine_with_warmup(1e-3, 1e-5, 2.0, 10, warmup_epochs=2) == pytest.approx(1e-3)
    mid = 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * 0.5))
    assert cosine_with_warmup(1e-3, 1e-5, 6.0, 10, warmup_epochs=2) == pytest.approx(mid)


def test_release_defaults():
    optim = OptimConfig()
    assert (optim.peak_lr, optim.min_lr, optim.base_weight_decay, optim.step2_weight_decay) == (1e-3, 1e-5, 1e-5, 0.0)
    assert (OptimConfig(name="sgd").peak_lr, OptimConfig(name="sgd").base_weight_decay) == (0.025, 3e-4)


def test_phase_plan():
    policy = BinarizationPolicy.released()
    cfg = TrainConfig(epochs=3)
    step1, step2 = plan_phases(cfg, policy, self_teacher=False)
    assert step1.policy == policy.activations_only() and step1.weight_decay == 1e-5
    assert step2.policy == policy and step2.weight_decay == 0.0 and step2.init_from == "step1"
    teacher, *_ = plan_phases(TrainConfig(epochs=3, net=NetConfig(drop_path_prob=0.1)), policy, self_teacher=True)
    assert teacher.name == "teacher" and teacher.policy.is_real and teacher.loss == "ce"
    assert teacher.drop_path_prob == 0.1 and step1.drop_path_prob == 0.0  # drop-path: real networks only
    (one,) = plan_phases(TrainConfig(two_step=False), policy, self_teacher=False)
    assert one.name == "train" and one.policy == policy
    (real,) = plan_phases(TrainConfig(binary=False), policy, self_teacher=False)
    assert real.policy.is_real


def test_step2_init_accepts_only_new_quantizer_parameters():
    policy = BinarizationPolicy.released(weight_quantizer="learned_scale")
    step1, step2 = tiny_net(policy.activations_only()), tiny_net(policy)
    added = init_from_previous(step2, step1.state_dict())
    assert added and all(".weight_quantizer.m" in k for k in added)
    for k, v in step1.state_dict().items():
        assert torch.equal(step2.state_dict()[k], v)
    other = Network(get_genotype("darts-v1"), num_classes=10, channels=4, layers=3, policy=policy)
    with pytest.raises(CheckpointError, match="do not fit"):
        init_from_previous(other, step1.state_dict())
