"""Optimizers and learning-rate schedules for search and retraining.

`build_optimizer` makes AdamW (the released DCP-NAS recipe, spec §5.7) or SGD with momentum (DARTS
evaluation), with weight decay only on multi-dimensional weights, as timm's `create_optimizer` does by
default (BatchNorm/PReLU parameters and biases are not decayed). `cosine_with_warmup` is a pure
function of the (fractional) epoch, so resuming a run needs no scheduler state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from binas.config.schema import SearchConfig
from binas.errors import ConfigError

#: Parameters with at most this many dimensions (biases, BN/PReLU weights) get no weight decay (timm).
NO_DECAY_MAX_DIM = 1


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: decayed conv/linear weights and (learned scales), undecayed 1-d parameters."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= NO_DECAY_MAX_DIM else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(
    model: nn.Module,
    name: str,
    *,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """AdamW or SGD (momentum) over `model`'s trainable parameters."""
    groups = param_groups(model, weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    raise ConfigError(f"unknown optimizer '{name}'; choose one of: adamw, sgd")


def build_weight_optimizer(params: list[nn.Parameter], search: SearchConfig) -> torch.optim.Optimizer:
    """SGD with momentum (DARTS) or Adam, from the shared search settings."""
    if search.w_optimizer == "adam":
        return torch.optim.Adam(params, lr=search.w_lr, weight_decay=search.w_weight_decay)
    return torch.optim.SGD(params, lr=search.w_lr, momentum=search.w_momentum, weight_decay=search.w_weight_decay)


def build_arch_optimizer(params: list[nn.Parameter], search: SearchConfig) -> torch.optim.Optimizer:
    """Adam on the architecture parameters (DARTS: lr 3e-4, betas (0.5, 0.999), weight decay 1e-3)."""
    return torch.optim.Adam(params, lr=search.arch_lr, betas=search.arch_betas, weight_decay=search.arch_weight_decay)


def cosine_with_warmup(
    base_lr: float, min_lr: float, progress: float, total_epochs: float, warmup_epochs: float = 0.0
) -> float:
    """Learning rate at fractional epoch `progress` (0 <= progress <= total).

    Linear warm-up from 0 to `base_lr` over `warmup_epochs`, then cosine annealing to `min_lr` at
    `total_epochs` (Loshchilov & Hutter, 2017; the release uses timm's cosine schedule, spec §5.7).
    """
    if warmup_epochs > 0 and progress < warmup_epochs:
        return base_lr * progress / warmup_epochs
    span = total_epochs - warmup_epochs
    if span <= 0:
        return base_lr
    t = min(max((progress - warmup_epochs) / span, 0.0), 1.0)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * t))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def trainable(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    """The parameters that require gradients (for clipping)."""
    return [p for p in params if p.requires_grad]
