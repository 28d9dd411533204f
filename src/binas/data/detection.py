"""Detection data: what a detection sample is, the batch collate, resizing and flipping boxes, the registry.

A detection data set yields `(image C×H×W float32, target)` where `target` is a dict of `boxes` (N×4
float, xyxy in pixels of the returned image), `labels` (N int64, `0 .. num_classes - 1`) and `difficult`
(N bool: VOC's flag, COCO's `iscrowd`; ignored by the mAP, not trained on). Every image is resized to one
square `image_size`, so batches are one stacked tensor (`collate_detection`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from binas.registry import Registry

Target = dict[str, Tensor]
DetectionBatch = tuple[Tensor, list[Target]]


@dataclass(frozen=True)
class DetectionInfo:
    """Facts a detector needs about a detection data set.

    Attributes:
        name: registry name (`digits-detection`, `voc`, `coco`).
        class_names: one name per label.
        image_size: height == width of the returned images.
        in_channels: image channels.
        mean, std: per-channel constants already subtracted/divided out (to draw images back).
        hflip: whether horizontal flips are a valid augmentation (not for digits).
    """

    name: str
    class_names: tuple[str, ...]
    image_size: int
    in_channels: int = 3
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    hflip: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class DetectionDataset(Dataset):
    """Base class: `dataset[i] -> (image, target)`, `len(dataset)`, `info`."""

    info: DetectionInfo

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


def make_target(boxes: Tensor, labels: Tensor, difficult: Tensor | None = None) -> Target:
    """A target dict with the dtypes every consumer expects (an empty box list is 0×4)."""
    boxes = boxes.reshape(-1, 4).float()
    labels = labels.reshape(-1).long()
    flags = torch.zeros(len(labels), dtype=torch.bool) if difficult is None else difficult.reshape(-1).bool()
    return {"boxes": boxes, "labels": labels, "difficult": flags}


def collate_detection(samples: Sequence[tuple[Tensor, Target]]) -> DetectionBatch:
    """Stack the images (all `image_size` square); keep the targets as a list (one per image)."""
    return torch.stack([s[0] for s in samples]), [s[1] for s in samples]


def resize_image_and_boxes(image: Tensor, boxes: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Plain resize of a C×H×W image to size×size, boxes scaled by the same x and y factors."""
    h, w = image.shape[-2:]
    if (h, w) != (size, size):
        image = F.interpolate(image[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    scale = torch.tensor([size / w, size / h, size / w, size / h])
    return image, boxes * scale


def hflip_batch(images: Tensor, targets: list[Target], generator: torch.Generator) -> tuple[Tensor, list[Target]]:
    """Flip each image horizontally with probability 1/2 (drawn from `generator`), its boxes with it."""
    flips = torch.rand(len(targets), generator=generator) < 0.5
    if not bool(flips.any()):
        return images, targets
    width = images.shape[-1]
    images = images.clone()
    images[flips] = images[flips].flip(-1)
    out = []
    for target, flip in zip(targets, flips.tolist()):
        if flip:
            b = target["boxes"]
            target = {**target, "boxes": torch.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], dim=1)}
        out.append(target)
    return images, out


#: loader(split, *, data_dir, image_size, max_images) -> DetectionDataset
DetectionLoader = Callable[..., DetectionDataset]
DETECTION_DATASETS: Registry[DetectionLoader] = Registry("detection data set")
