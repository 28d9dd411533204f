"""The phases of a retraining run: optional real teacher, then one step or the two-step 1-bit schedule.

Two-step training (spec §3.2, the released `MConv_new_step1` / `MConv_new`): step 1 trains the network
with binary activations and real weights (`BinarizationPolicy.activations_only()`), weight decay 1e-5;
step 2 starts from step 1's weights and binarizes the weights too, weight decay 0. Each phase gets a fresh
optimizer and learning-rate schedule, as the release starts step 2 as a new run with `--load True`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from binas.config.train import TrainConfig
from binas.errors import CheckpointError
from binas.quant.policy import BinarizationPolicy

logger = logging.getLogger(__name__)

TEACHER, STEP1, STEP2, ONE_STEP = "teacher", "step1", "step2", "train"


@dataclass(frozen=True)
class Phase:
    """One training phase.

    Attributes:
        name: `teacher`, `step1`, `step2` or `train` (one-step or real training).
        policy: binarization of the network trained in this phase.
        epochs, weight_decay: its length and weight decay.
        loss: `ce` for the teacher, else the configured loss kind.
        drop_path_prob: final drop-path probability (real networks only).
        init_from: name of the phase whose final weights initialise this one (step 2: step 1).
    """

    name: str
    policy: BinarizationPolicy
    epochs: int
    weight_decay: float
    loss: str
    drop_path_prob: float = 0.0
    init_from: str | None = None


def plan_phases(cfg: TrainConfig, policy: BinarizationPolicy, *, self_teacher: bool) -> list[Phase]:
    """The phases `cfg` asks for, in order, for the 1-bit `policy` (or a real one when not binary)."""
    optim, phases = cfg.optim, []
    drop = cfg.net.drop_path_prob
    if self_teacher:
        phases.append(
            Phase(
                TEACHER,
                BinarizationPolicy.real(),
                cfg.teacher.epochs or cfg.epochs,
                optim.base_weight_decay,
                "ce",
                drop,
            )
        )
    if not cfg.binary or policy.is_real:
        return [
            *phases,
            Phase(ONE_STEP, BinarizationPolicy.real(), cfg.epochs, optim.base_weight_decay, cfg.loss.kind, drop),
        ]
    if not cfg.two_step:
        return [*phases, Phase(ONE_STEP, policy, cfg.epochs, optim.base_weight_decay, cfg.loss.kind)]
    step1 = Phase(STEP1, policy.activations_only(), cfg.epochs, optim.base_weight_decay, cfg.loss.kind)
    step2 = Phase(STEP2, policy, cfg.epochs, optim.step2_weight_decay, cfg.loss.kind, init_from=STEP1)
    return [*phases, step1, step2]


def init_from_previous(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load step 1's weights into the step-2 network; return the keys step 2 adds (left at their init).

    The only parameters step 2 may add are its weight quantizers' (the learned scale M of the released
    conv, which step 1 does not use); anything else missing or unexpected means the two networks differ,
    which is an error.
    """
    result = model.load_state_dict(state, strict=False)
    foreign = [k for k in result.missing_keys if ".weight_quantizer." not in k]
    if foreign or result.unexpected_keys:
        shown = ", ".join((foreign + list(result.unexpected_keys))[:4])
        raise CheckpointError(f"step-1 weights do not fit the step-2 network (keys: {shown})")
    if result.missing_keys:
        logger.info("step 2 adds %d weight-quantizer parameters at their initial values", len(result.missing_keys))
    return list(result.missing_keys)
