"""Typed config of a re-identification run (`binas reid`, `binas.workflows.reid.train_reid`).

A separate top-level config (`ReidConfig`), not a section of `RunConfig`: a re-ID run shares no search
settings, and its presets (`presets/digits_reid.yaml`, `presets/market1501_reid.yaml`) load strictly with
`load_reid_config`. Defaults are the bundled `digits-reid` stand-in at a size that trains a real and a
1-bit network in minutes on 2 CPU cores; the Market-1501 preset spells out the usual "Bag of Tricks"
settings (Luo et al., 2019): 256x128 inputs, P=16 identities x K=4 images, triplet margin 0.3, label
smoothing 0.1, BN-neck.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from binas.config.io import load_config
from binas.config.train import OpFamilyName, OptimConfig

#: Names `teacher.source` accepts besides a path: train a real twin first, in this run.
SELF_REAL = "self-real"
#: Bag of Tricks defaults (Luo et al., 2019, Sec. 3): triplet margin, label smoothing epsilon.
TRIPLET_MARGIN = 0.3
LABEL_SMOOTHING = 0.1
# Bundled stand-in defaults, measured on 2 CPU cores (README of `binas reid`).
DIGITS_REID_EPOCHS = 4
DIGITS_REID_CHANNELS = 8
DIGITS_REID_LAYERS = 3
IDS_PER_BATCH = 16
IMAGES_PER_ID = 4


@dataclass(frozen=True)
class ReidDataConfig:
    """Which re-ID data set, where, at what size.

    Attributes:
        name: `digits-reid` (bundled stand-in) or `market1501` (reads `data_dir`).
        data_dir: the Market-1501 folder (holding `bounding_box_train/`, `query/`, `bounding_box_test/`).
        height, width: input size; None: the data set's default (digits-reid 16x16, Market-1501 256x128).
        augment: random crop + horizontal flip of training batches; None: the data set's default (on for
            Market-1501, off for digits-reid, whose "cameras" already are augmentations).
        max_train_ids: train on the first N training identities only (quick runs).
        max_test_ids: evaluate on the first N test identities only (quick runs; not comparable to papers).
    """

    name: str = "digits-reid"
    data_dir: str | None = None
    height: int | None = None
    width: int | None = None
    augment: bool | None = None
    max_train_ids: int | None = None
    max_test_ids: int | None = None

    def __post_init__(self) -> None:
        for key in ("height", "width", "max_train_ids", "max_test_ids"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ValueError(f"{key} must be >= 1 or null, got {value}")


@dataclass(frozen=True)
class ReidModelConfig:
    """The backbone and the head.

    Attributes:
        backbone: anything `binas.backbone` builds: a zoo genotype name, genotype.json, a run directory, or a
            reference network (`birealnet18`, `reactnet-a`; `channels` is then its base width).
        channels, layers: initial channels C and number of cells of a genotype backbone.
        stem: None: `cifar` for small inputs (digits-reid), `imagenet` (stride 8) otherwise; `small` (stride 2)
            exists for reference backbones only.
        family: op family; None: the zoo genotype's own, else `darts`.
        binary: a 1-bit backbone (policy `policy`) or a real one.
        two_step: 1-bit only: step 1 binary activations, step 2 binary weights too (spec §3.2).
        policy: the 1-bit binarization policy (`released` or `strict`).
        weight_quantizer: None: the zoo genotype's own binarizer, else `mean_abs`.
        neck: the BN-neck of Bag of Tricks (triplet on the pre-BN feature, ID loss on the post-BN one).
    """

    backbone: str = "dcp-nas-l"
    channels: int = DIGITS_REID_CHANNELS
    layers: int = DIGITS_REID_LAYERS
    stem: Literal["cifar", "small", "imagenet"] | None = None
    family: OpFamilyName | None = None
    binary: bool = True
    two_step: bool = True
    policy: Literal["released", "strict"] = "released"
    weight_quantizer: Literal["mean_abs", "learned_scale"] | None = None
    neck: bool = True

    def __post_init__(self) -> None:
        if self.channels < 1 or self.layers < 3:
            raise ValueError(f"need channels >= 1 and layers >= 3, got {self.channels} and {self.layers}")


@dataclass(frozen=True)
class ReidLossConfig:
    """ID cross-entropy + batch-hard triplet (+ embedding distillation when a teacher is set).

    Attributes:
        id_weight, triplet_weight: weights of the two terms.
        margin: triplet margin; null: the soft-margin form log(1 + exp(d_ap - d_an)) (Hermans et al., 2017).
        label_smoothing: epsilon of the ID loss (Bag of Tricks: 0.1).
        kd_weight: weight of the similarity distillation from the teacher's embeddings.
    """

    id_weight: float = 1.0
    triplet_weight: float = 1.0
    margin: float | None = TRIPLET_MARGIN
    label_smoothing: float = LABEL_SMOOTHING
    kd_weight: float = 1.0

    def __post_init__(self) -> None:
        if min(self.id_weight, self.triplet_weight, self.kd_weight) < 0:
            raise ValueError("loss weights must be >= 0")
        if self.margin is not None and self.margin < 0:
            raise ValueError(f"margin must be >= 0 or null (soft margin), got {self.margin}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass(frozen=True)
class ReidTeacherConfig:
    """Optional distillation from a real network's embeddings.

    Attributes:
        source: null (no distillation); `self-real` (a real twin of the same backbone, trained first in
            this run); or a finished `binas reid` run directory / its `model.pt`.
        epochs: epochs of the `self-real` teacher; None: `train.epochs`.
    """

    source: str | None = None
    epochs: int | None = None


@dataclass(frozen=True)
class ReidTrainConfig:
    """The schedule and the P x K batches.

    Attributes:
        epochs: epochs per phase (per step of the two-step schedule).
        ids_per_batch, images_per_id: P identities x K images per batch (Hermans et al., 2017).
        eval_every: evaluate rank-k / mAP every N epochs (0: after each phase's last epoch only).
        eval_batch_size: batch of the query / gallery embedding pass.
    """

    epochs: int = DIGITS_REID_EPOCHS
    ids_per_batch: int = IDS_PER_BATCH
    images_per_id: int = IMAGES_PER_ID
    eval_every: int = 1
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.ids_per_batch < 2 or self.images_per_id < 2:
            raise ValueError("need epochs >= 1, ids_per_batch >= 2 and images_per_id >= 2 (triplets need both)")
        if self.eval_every < 0 or self.eval_batch_size < 1:
            raise ValueError("need eval_every >= 0 and eval_batch_size >= 1")

    @property
    def batch_size(self) -> int:
        return self.ids_per_batch * self.images_per_id


@dataclass(frozen=True)
class ReidConfig:
    """Everything `binas reid` needs (see the module docstring)."""

    seed: int = 0
    device: str = "auto"
    num_threads: int | None = 1
    data: ReidDataConfig = field(default_factory=ReidDataConfig)
    model: ReidModelConfig = field(default_factory=ReidModelConfig)
    loss: ReidLossConfig = field(default_factory=ReidLossConfig)
    teacher: ReidTeacherConfig = field(default_factory=ReidTeacherConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: ReidTrainConfig = field(default_factory=ReidTrainConfig)


def load_reid_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> ReidConfig:
    """A `ReidConfig` from a YAML file (None: the defaults) with `a.b=c` overrides, strictly."""
    return load_config(ReidConfig, path, overrides)
