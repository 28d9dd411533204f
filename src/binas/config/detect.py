"""Typed config of `binas detect` (`DetectConfig`): data, detector shape, two-step schedule, loss, distillation.

Defaults are the bundled `digits-detection` stand-in sized to train in a few minutes on 2 CPU cores
(measured; see `presets/digits_detect.yaml`); `voc_detect` and `coco_detect` are the paper-sized
settings (DCP-NAS reports transfer to detection without its recipe: the schedule there is [Inf]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from binas.config.io import load_config
from binas.config.schema import DEFAULT_THREADS
from binas.config.train import OpFamilyName, OptimConfig

DETECT_EPOCHS = 8
DETECT_BATCH_SIZE = 32
DETECT_LR = 2e-3


@dataclass(frozen=True)
class DetectDataConfig:
    """Which detection data set (`binas.data.detection.DETECTION_DATASETS`), where, at what input size.

    Attributes:
        name: `digits-detection` (bundled), `voc`, `coco`.
        data_dir: the local folder of `voc` / `coco`.
        image_size: square input side (None: the data set's default: 64 digits, 512 VOC/COCO).
        train_split, test_split: split names (None: train/test for digits, trainval/test for VOC, train/val for COCO).
        augment: random horizontal flips of training images (only where the data set allows them).
        max_train_images, max_test_images: use only the first N images (quick runs).
    """

    name: str = "digits-detection"
    data_dir: str | None = None
    image_size: int | None = None
    train_split: str | None = None
    test_split: str | None = None
    augment: bool = True
    max_train_images: int | None = None
    max_test_images: int | None = None
    num_workers: int = 0


@dataclass(frozen=True)
class DetectorConfig:
    """The backbone (`binas.backbone`) and the neck/head on it.

    Attributes:
        backbone: a genotype (zoo name, genotype.json, run dir) or a reference backbone name.
        channels, layers, stem, family: the backbone's shape (`binas.backbone` arguments; a reference
            backbone (`birealnet18`, `reactnet-a`) has a fixed depth, and `channels: null` is its published width).
        policy: the 1-bit policy of the binary run (`released`, `strict`).
        neck_channels, head_channels: widths of the (real) FPN-lite and head convs.
        upsample: extra x2 steps of the neck (stride 8 -> 4 with 1).
    """

    backbone: str = "darts-v2"
    channels: int | None = 16
    layers: int = 5
    stem: str = "imagenet"
    family: OpFamilyName | None = None
    policy: Literal["released", "strict"] = "released"
    neck_channels: int = 64
    head_channels: int = 64
    upsample: int = 0


@dataclass(frozen=True)
class DistillConfig:
    """Distillation from the real twin (same backbone, real weights and activations), trained first.

    Off by default: measured on digits-detection (8 + 8 epochs, seed 0) it moved the 1-bit test mAP from
    0.738 to 0.755 (mAP50 0.875 -> 0.889), less than the spread between seeds (real runs: 0.60 vs 0.66),
    for a third more CPU time (the twin's epochs). `objectives.detection.head_distill_loss`.

    Attributes:
        weight: weight of the distillation term (0: off; then no teacher is trained).
        teacher_epochs: epochs of the real twin (None: `train.epochs`).
    """

    weight: float = 0.0
    teacher_epochs: int | None = None


@dataclass(frozen=True)
class DetectTrainConfig:
    """Training schedule (per step of the two-step 1-bit recipe), loss and decoding.

    Attributes:
        giou_weight: weight of the GIoU box loss against the focal heat-map loss.
        top_k, score_threshold: decoding (detections kept per image and their lowest score).
        eval_every: evaluate mAP on the test split every N epochs (0: only at the end of each step).
        num_drawn: test images drawn with predicted and true boxes into `detections.png`.
    """

    epochs: int = DETECT_EPOCHS
    batch_size: int = DETECT_BATCH_SIZE
    binary: bool = True
    two_step: bool = True
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=DETECT_LR, warmup_epochs=1.0, grad_clip=10.0))
    giou_weight: float = 2.0
    top_k: int = 100
    score_threshold: float = 0.05
    eval_every: int = 0
    num_drawn: int = 8

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 0 or self.top_k < 1:
            raise ValueError("epochs, batch_size and top_k must be >= 1 and eval_every >= 0")


@dataclass(frozen=True)
class DetectConfig:
    """Everything `binas detect` reads (saved as the run's `config.yaml`)."""

    seed: int = 0
    device: str = "auto"
    num_threads: int | None = DEFAULT_THREADS
    data: DetectDataConfig = field(default_factory=DetectDataConfig)
    model: DetectorConfig = field(default_factory=DetectorConfig)
    train: DetectTrainConfig = field(default_factory=DetectTrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)


def load_detect_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DetectConfig:
    """A `DetectConfig` from a YAML file (None: the defaults) with `a.b=c` overrides, strictly."""
    return load_config(DetectConfig, path, overrides)
