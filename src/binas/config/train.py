"""Typed retraining config (`RunConfig.train`): network shape, two-step schedule, optimizer, loss, teacher.

Defaults train a searched cell on the bundled digits data in minutes on a laptop CPU; the released
DCP-NAS ImageNet recipe (spec §5.7) differs only in size and epochs: AdamW lr 1e-3, cosine to 1e-5,
no warm-up, weight decay 1e-5 in step 1 and 0 in step 2, KD from a ResNet-34 as the only loss, 256
epochs per step at C=108, 10 cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

# Released retraining recipe (spec §5.7, `step1.sh`/`step2.sh`, timm `create_optimizer` defaults).
ADAMW_LR = 1e-3
MIN_LR = 1e-5
ADAMW_BETAS = (0.9, 0.999)
STEP1_WEIGHT_DECAY = 1e-5
STEP2_WEIGHT_DECAY = 0.0
# DARTS evaluation (Liu et al., 2019, `train.py`): SGD lr 0.025, momentum 0.9, weight decay 3e-4,
# gradient clipping 5, auxiliary weight 0.4, drop-path 0.2.
SGD_LR = 0.025
SGD_MOMENTUM = 0.9
SGD_WEIGHT_DECAY = 3e-4
DARTS_AUX_WEIGHT = 0.4
# Digits defaults, measured on 2 CPU cores (see docs / the issue-7 report): small enough to train both
# steps in minutes, big enough for the 1-bit network to get close to the real one.
DIGITS_CHANNELS = 16
DIGITS_LAYERS = 5
DIGITS_EPOCHS = 8
DIGITS_BATCH_SIZE = 64
DIGITS_WARMUP_EPOCHS = 1.0

#: The op families a network or supernet is built from (`binas.space.ops.OP_FAMILIES`).
OpFamilyName = Literal["darts", "dcp"]


@dataclass(frozen=True)
class NetConfig:
    """Shape of the network built from the genotype.

    Attributes:
        channels, layers: initial channels C and number of cells (DARTS CIFAR: 36, 20).
        family: op family; None: the published family of a zoo genotype, else `space.family`.
        stem: None: `imagenet` for the imagenet data set, else `space.stem`.
        auxiliary: DARTS's auxiliary head (training only), weighted by `loss.aux_weight`.
        drop_path_prob: final drop-path probability, ramped linearly over the epochs (DARTS); applied to
            real-valued networks only (the 1-bit recipe uses 0, spec §5.7).
        arch: None: the genotype's network; else a hand-designed reference network (`birealnet18`,
            `reactnet-a`: `binas.nets.reference`), set when one is named instead of a genotype. Then
            `channels` is its base width and `stem` its stem; its depth is fixed (`layers`, `family` and
            `auxiliary` do not apply).
    """

    channels: int = DIGITS_CHANNELS
    layers: int = DIGITS_LAYERS
    family: OpFamilyName | None = None
    stem: Literal["cifar", "imagenet"] | None = None
    auxiliary: bool = False
    drop_path_prob: float = 0.0
    arch: str | None = None

    def __post_init__(self) -> None:
        if self.channels < 1 or self.layers < 3:
            raise ValueError(f"need channels >= 1 and layers >= 3, got {self.channels} and {self.layers}")
        if not 0.0 <= self.drop_path_prob < 1.0:
            raise ValueError(f"drop_path_prob must be in [0, 1), got {self.drop_path_prob}")


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and learning-rate schedule (cosine with linear warm-up, per iteration).

    Attributes:
        name: `adamw` (the release) or `sgd` (DARTS evaluation, momentum `momentum`).
        lr: peak learning rate; None: 1e-3 for AdamW, 0.025 for SGD.
        min_lr: learning rate at the end of the cosine.
        warmup_epochs: linear warm-up from 0 to `lr` (may be fractional; the release uses 0).
        weight_decay: step 1, one-step and real training; None: 1e-5 for AdamW, 3e-4 for SGD.
        step2_weight_decay: step 2 of two-step training (the release: 0).
        betas, momentum: AdamW betas, SGD momentum.
        grad_clip: max global gradient norm; None: no clipping (DARTS uses 5).
    """

    name: Literal["adamw", "sgd"] = "adamw"
    lr: float | None = None
    min_lr: float = MIN_LR
    warmup_epochs: float = DIGITS_WARMUP_EPOCHS
    weight_decay: float | None = None
    step2_weight_decay: float = STEP2_WEIGHT_DECAY
    betas: tuple[float, float] = ADAMW_BETAS
    momentum: float = SGD_MOMENTUM
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not (math.isfinite(self.min_lr) and self.min_lr >= 0 and self.warmup_epochs >= 0):
            raise ValueError("min_lr and warmup_epochs must be finite and >= 0")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be positive or null, got {self.grad_clip}")

    @property
    def peak_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return ADAMW_LR if self.name == "adamw" else SGD_LR

    @property
    def base_weight_decay(self) -> float:
        if self.weight_decay is not None:
            return self.weight_decay
        return STEP1_WEIGHT_DECAY if self.name == "adamw" else SGD_WEIGHT_DECAY


@dataclass(frozen=True)
class LossConfig:
    """The training loss.

    Attributes:
        kind: `ce`; `kd` (soft cross-entropy against the teacher's probabilities: the release's only loss,
            spec §5.7); `ce+kd` ((1 - kd_weight) CE + kd_weight KD); `cp` (CE + the CP-NAS kernel loss,
            spec §4.3, Eqs. 4.17-4.18).
        kd_weight: weight of KD in `ce+kd`.
        temperature: KD temperature T (the KD term is scaled by T^2, Hinton et al. 2015; release: 1).
        label_smoothing: on the CE term (the release: 0).
        cp_lambda: lambda of the CP kernel loss; None: that loss's own default.
        aux_weight: weight of the auxiliary head's CE when `net.auxiliary` is on (DARTS 0.4).
    """

    kind: Literal["ce", "kd", "ce+kd", "cp"] = "ce"
    kd_weight: float = 0.5
    temperature: float = 1.0
    label_smoothing: float = 0.0
    cp_lambda: float | None = None
    aux_weight: float = DARTS_AUX_WEIGHT

    def __post_init__(self) -> None:
        if not 0.0 <= self.kd_weight <= 1.0:
            raise ValueError(f"kd_weight must be in [0, 1], got {self.kd_weight}")
        if self.temperature <= 0 or not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError("temperature must be > 0 and label_smoothing in [0, 1)")

    @property
    def uses_teacher(self) -> bool:
        return self.kind in ("kd", "ce+kd")


@dataclass(frozen=True)
class TeacherConfig:
    """Where the KD teacher comes from (used only by `kd` and `ce+kd` losses).

    Attributes:
        source: `self-real` (a real network of the same genotype and shape, trained first by this run
            with CE), a binas model checkpoint / train run directory, or `torchvision:NAME` (e.g.
            `torchvision:resnet34`, the release's ImageNet teacher; needs the `vision` extra).
        epochs: epochs of the `self-real` teacher; None: `train.epochs`.
        pretrained: load torchvision's default pretrained weights for a `torchvision:` teacher.
    """

    source: str = "self-real"
    epochs: int | None = None
    pretrained: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """Retraining a genotype's network (spec §3.2 two-step training, §5.7 recipe).

    Attributes:
        epochs: epochs per step (two-step training runs `epochs` in step 1, then `epochs` in step 2).
        batch_size: global mini-batch (split over torchrun ranks); eval_batch_size: None = batch_size.
        binary: train the 1-bit network (policy `space.policy`); false: the real-valued network.
        two_step: step 1 binary activations with real weights, step 2 everything binary, initialised from
            step 1 (the release); false: train the 1-bit network directly.
        amp: mixed precision on CUDA (bf16 where supported, else fp16 with a gradient scaler).
        eval_every: evaluate on the test split every N epochs (0: only at the end of each step).
    """

    epochs: int = DIGITS_EPOCHS
    batch_size: int = DIGITS_BATCH_SIZE
    eval_batch_size: int | None = None
    binary: bool = True
    two_step: bool = True
    amp: bool = True
    eval_every: int = 1
    net: NetConfig = field(default_factory=NetConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 0:
            raise ValueError("epochs and batch_size must be >= 1 and eval_every >= 0")
