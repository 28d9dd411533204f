"""Typed run configuration: nested frozen dataclasses, loaded strictly from YAML (`binas.config.io`).

Each component receives only its own section. Method-specific search options live in
`search.options` and are validated against the chosen strategy's own config class
(`STRATEGIES.get(method).Config`), so a new strategy adds its options without touching this file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from binas.config.train import OpFamilyName, TrainConfig
from binas.quant.policy import BinarizationPolicy
from binas.quant.quantizers import STE_CLIP
from binas.space.mobilenet import MobileNetConfig
from binas.space.supernet import SupernetConfig

# Search optimiser defaults: DARTS (Liu et al., ICLR 2019), CIFAR-10 search setting (spec §5.7 [Inf]).
W_LR = 0.025
W_LR_MIN = 0.001
W_MOMENTUM = 0.9
W_WEIGHT_DECAY = 3e-4
GRAD_CLIP = 5.0
ARCH_LR = 3e-4
ARCH_BETAS = (0.5, 0.999)
ARCH_WEIGHT_DECAY = 1e-3
#: CPU threads of a run when the config does not say (see `RunConfig`).
DEFAULT_THREADS = 1
#: The search method when none is named: the flagship (`binas search`, `binas run`, `RunConfig()`).
DEFAULT_METHOD = "dcp-nas"
#: The weight binarizers a config can name (`binas.quant.quantizers.WEIGHT_QUANTIZERS`).
WeightQuantizerName = Literal["mean_abs", "learned_scale"]
#: The binarizer of `space.weight_quantizer: null` outside the zoo genotypes that carry their own.
DEFAULT_WEIGHT_QUANTIZER: WeightQuantizerName = "mean_abs"


@dataclass(frozen=True)
class DataConfig:
    """Which data set, where, at what size, and how the search splits it.

    Attributes:
        name: data set registry name (`digits` is bundled; `cifar10`, `imagenet` read `data_dir`).
        data_dir: folder of a local data set.
        image_size: resize to this size (None: the data set's default; digits 16).
        train_portion: fraction of the training split that trains weights during search (rest: alpha).
        augment: random crop + flip of training batches; None = the data set's default (on for CIFAR-10
            and ImageNet, off for digits, where it costs accuracy and a flipped digit is another digit).
        max_train_samples: use only the first N training samples (quick runs on big data sets).
        num_workers: DataLoader worker processes (0 = in the main process).
    """

    name: str = "digits"
    data_dir: str | None = None
    image_size: int | None = None
    train_portion: float = 0.5
    augment: bool | None = None
    max_train_samples: int | None = None
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size must be >= 1 or null, got {self.image_size}")
        if not 0.0 < self.train_portion < 1.0:
            raise ValueError(f"train_portion must be in (0, 1), got {self.train_portion}")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ValueError(f"max_train_samples must be >= 1 or null, got {self.max_train_samples}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")


@dataclass(frozen=True)
class SpaceConfig:
    """The search space and the supernet's shape; digits-sized defaults (full size: `presets/`).

    `policy` is the binarization of the 1-bit supernet (spec A8): `released` (the official code) or
    `strict` (every cell conv 1-bit); `real` searches a real-valued supernet.

    `ste_clip` is the clip of the straight-through estimators (`ste_sign`, `mean_abs`; 1.0, Eq. 4.35); it
    is written into every model file with the policy.

    `weight_quantizer` null means a zoo genotype's own binarizer when one is trained (`dcp-nas-l`: the
    release's `learned_scale`), else `mean_abs`.

    `kind` picks the search space: `darts` (the DARTS cell; `channels` ... `stem` apply) or `mobilenet`
    (the MobileNetV2-style block space of DDPNAS, spec ddpnas §1.1, shaped by `mobilenet`; searched by
    `ddpnas`). `policy` and the quantizers apply to both.
    """

    channels: int = 8
    layers: int = 5
    steps: int = 4
    multiplier: int = 4
    stem_multiplier: int = 3
    family: OpFamilyName = "darts"
    stem: Literal["cifar", "imagenet"] = "cifar"
    policy: Literal["real", "released", "strict"] = "released"
    act_quantizer: Literal["approx_sign", "ste_sign"] = "approx_sign"
    weight_quantizer: WeightQuantizerName | None = None
    ste_clip: float = STE_CLIP
    kind: Literal["darts", "mobilenet"] = "darts"
    mobilenet: MobileNetConfig = field(default_factory=MobileNetConfig)

    def __post_init__(self) -> None:
        if self.channels < 1 or self.layers < 3 or self.steps < 1 or self.stem_multiplier < 1:
            raise ValueError(
                f"need channels >= 1, layers >= 3, steps >= 1 and stem_multiplier >= 1, got {self.channels}, "
                f"{self.layers}, {self.steps} and {self.stem_multiplier}"
            )
        if not 1 <= self.multiplier <= self.steps:
            raise ValueError(f"multiplier must be in [1, steps={self.steps}], got {self.multiplier}")
        if not (math.isfinite(self.ste_clip) and self.ste_clip > 0):
            raise ValueError(f"ste_clip must be a finite number > 0, got {self.ste_clip}")

    def supernet(self, partial_channels: int = 1) -> SupernetConfig:
        return SupernetConfig(
            channels=self.channels,
            layers=self.layers,
            steps=self.steps,
            multiplier=self.multiplier,
            stem_multiplier=self.stem_multiplier,
            family=self.family,
            partial_channels=partial_channels,
            stem=self.stem,
        )

    def binary_policy(self) -> BinarizationPolicy:
        return BinarizationPolicy.preset(
            self.policy,
            act_quantizer=self.act_quantizer,
            weight_quantizer=self.weight_quantizer or DEFAULT_WEIGHT_QUANTIZER,
            ste_clip=self.ste_clip,
        )


@dataclass(frozen=True)
class SearchConfig:
    """Settings every search strategy shares, plus `options` for the chosen method.

    Attributes:
        method: strategy registry name (`dcp-nas`, the default; `darts`, `pc-darts`, `cp-nas`, ...).
        epochs: search epochs; None = the method's own default (`default_epochs` of its strategy: 10 for
            DARTS, PC-DARTS and random, 3 for DCP-NAS, whose epoch is a Parent and a Child round). DDPNAS
            runs its pruning schedule and stops early at `epochs` if set; CP-NAS and BNAS run their own
            sampling schedule and reject it (leave it null).
        batch_size: mini-batch size for weights and architecture.
        binary: search the 1-bit supernet (with `space.policy`) instead of the real one; None = real.
            DCP-NAS searches a real Parent and a 1-bit Child and rejects it (leave it null).
        w_optimizer, w_lr, w_lr_min, w_momentum, w_weight_decay, grad_clip: supernet weights
            (SGD + cosine from w_lr to w_lr_min, DARTS defaults).
        arch_lr, arch_betas, arch_weight_decay: Adam on the architecture parameters (DARTS defaults).
        options: method-specific options, validated against the strategy's `Config` dataclass once
            (`binas.strategies.resolve_method_options`), after which they hold that typed object.
    """

    method: str = DEFAULT_METHOD
    epochs: int | None = None
    batch_size: int = 64
    binary: bool | None = None
    w_optimizer: Literal["sgd", "adam"] = "sgd"
    w_lr: float = W_LR
    w_lr_min: float = W_LR_MIN
    w_momentum: float = W_MOMENTUM
    w_weight_decay: float = W_WEIGHT_DECAY
    grad_clip: float = GRAD_CLIP
    arch_lr: float = ARCH_LR
    arch_betas: tuple[float, float] = ARCH_BETAS
    arch_weight_decay: float = ARCH_WEIGHT_DECAY
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1 or null, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        rates = {
            "w_lr": self.w_lr,
            "w_lr_min": self.w_lr_min,
            "w_momentum": self.w_momentum,
            "w_weight_decay": self.w_weight_decay,
            "arch_lr": self.arch_lr,
            "arch_weight_decay": self.arch_weight_decay,
        }
        for name, value in rates.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise ValueError(f"grad_clip must be a finite number > 0, got {self.grad_clip}")


@dataclass(frozen=True)
class RunConfig:
    """Everything a `binas` command needs. Only the CLI sees the whole object.

    `train` configures retraining a genotype's network (`binas train`, `binas.train`).

    `num_threads` is the number of intra-op CPU threads; null means torch's default (one per core). The
    default is 1: binas's CPU networks are small, and on a shared machine torch's default oversubscribes
    the cores (measured on 2 cores under a load of 3-5: a 1-epoch DARTS search took 294-434 s with torch's
    default and 58 s with one thread). A fixed count also makes a seed fix a run on any machine (float32
    1-bit networks depend on it). Set it to the cores you own on a quiet machine.
    """

    seed: int = 0
    device: str = "auto"
    num_threads: int | None = DEFAULT_THREADS
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
