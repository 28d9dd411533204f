"""What a re-identification data set is: images with an identity and a camera, in train / query / gallery.

`ReidSplit` holds one split: `pids` (identity per image; -1 marks junk images the protocol ignores),
`camids` (camera per image) and `labels` (the contiguous training label 0..num_ids-1 in `train`, the raw
identity in `query` / `gallery`). `images(indices)` decodes a batch. `ReidData` bundles the three
splits; `IdentityBatchSampler` draws the P identities x K images batches that batch-hard triplet mining
needs (Hermans et al., 2017). The loaders live in `data.market1501` and `data.digits_reid`; the registry
in `data.reid_datasets`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from binas.data.base import PIXEL_MAX, normalize_
from binas.errors import DataError
from binas.seeds import derive_seed

logger = logging.getLogger(__name__)

REID_SPLITS = ("train", "query", "gallery")
#: The identity the protocol ignores (Market-1501's junk images; same meaning in every data set here).
JUNK_ID = -1


@dataclass(frozen=True)
class ReidInfo:
    """Facts a model and a training loop need about a re-ID data set.

    Attributes:
        name: registry name (`digits-reid`, `market1501`).
        num_train_ids: identities in the training split (the ID classifier's classes).
        in_channels, height, width: image shape.
        mean, std: per-channel constants already subtracted / divided out.
        hflip: whether a horizontal flip keeps an identity (people yes, digits no).
        augment_by_default: random crop + flip of training batches when the config leaves it unset.
        stand_in: True for data that only imitates re-ID (the digits stand-in), so reports can say so.
    """

    name: str
    num_train_ids: int
    in_channels: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool = True
    augment_by_default: bool = True
    stand_in: bool = False


class ReidSplit(Dataset):
    """One split: `pids`, `camids`, `labels` (N int64 each) and `images(indices)` -> B x C x H x W."""

    pids: Tensor
    camids: Tensor
    labels: Tensor

    def images(self, indices: Sequence[int]) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:
        return int(self.pids.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images([index])[0], self.labels[index]

    def batch(self, indices: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
        """(images, labels, cameras) of `indices`."""
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        return self.images(indices), self.labels.index_select(0, rows), self.camids.index_select(0, rows)


class InMemoryReidSplit(ReidSplit):
    """A split held as one N x C x H x W tensor (small data sets)."""

    def __init__(self, images: Tensor, pids: Tensor, camids: Tensor, labels: Tensor | None = None) -> None:
        if not (images.ndim == 4 and len(images) == len(pids) == len(camids)):
            raise ValueError(f"images N x C x H x W, pids and camids must agree, got {tuple(images.shape)}")
        self._images = images.float().contiguous()
        self.pids, self.camids = pids.long(), camids.long()
        self.labels = self.pids if labels is None else labels.long()

    def images(self, indices: Sequence[int]) -> Tensor:
        return self._images.index_select(0, torch.as_tensor(list(indices), dtype=torch.long))


class FileReidSplit(ReidSplit):
    """A split decoded lazily from image files with Pillow, resized to height x width and normalised."""

    def __init__(
        self,
        paths: Sequence[Path],
        pids: Tensor,
        camids: Tensor,
        labels: Tensor | None,
        *,
        size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        self.paths = list(paths)
        self.pids, self.camids = pids.long(), camids.long()
        self.labels = self.pids if labels is None else labels.long()
        self.size, self.mean, self.std = size, tuple(mean), tuple(std)

    def images(self, indices: Sequence[int]) -> Tensor:
        batch = torch.stack([read_image(self.paths[i], self.size) for i in indices])
        return normalize_(batch, self.mean, self.std)


def read_image(path: Path, size: tuple[int, int]) -> Tensor:
    """Decode `path` as RGB and resize it to `size` = (height, width) (no crop: re-ID boxes keep their
    content, Bag of Tricks resizes directly). Returns 3 x H x W float in [0, 1]."""
    from PIL import Image

    height, width = size
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB").resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
    except (OSError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
        raise DataError(f"cannot read image {path}: {err}") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(PIXEL_MAX)


@dataclass
class ReidData:
    """The three splits of a re-ID data set and its `info`."""

    train: ReidSplit
    query: ReidSplit
    gallery: ReidSplit
    info: ReidInfo


def relabel(pids: Tensor) -> Tensor:
    """Contiguous labels 0..n-1 for the identities in `pids`, in sorted identity order."""
    return torch.unique(pids, sorted=True, return_inverse=True)[1]


def resize_batch(images: Tensor, height: int, width: int) -> Tensor:
    """Bilinearly resize N x C x H x W to height x width (antialiased when shrinking)."""
    if images.shape[-2:] == (height, width):
        return images
    shrinking = height < images.shape[-2] or width < images.shape[-1]
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking)


class IdentityBatchSampler:
    """P identities x K images per batch, a pure function of (labels, seed, epoch).

    Per epoch, each identity's images are shuffled (drawn with replacement up to K when it has fewer)
    and cut into groups of K (a remainder shorter than K is dropped, as torchreid's
    `RandomIdentitySampler`); batches then take one group from each of P identities chosen at random
    among those with groups left, until fewer than P remain. An epoch thus sees about every image once.
    """

    def __init__(self, labels: Tensor, ids_per_batch: int, images_per_id: int, seed: int) -> None:
        self.P, self.K, self.seed = ids_per_batch, images_per_id, seed
        order = torch.argsort(labels, stable=True)
        ids, counts = torch.unique_consecutive(labels[order], return_counts=True)
        self.members = [group.tolist() for group in torch.split(order, counts.tolist())]
        if len(ids) < self.P:
            raise DataError(f"a P x K batch needs P={self.P} identities, the training split has {len(ids)}")

    def shard(self, batch: list[int], rank: int, world_size: int) -> list[int]:
        """A rank's part of a P x K batch under torchrun: every `world_size`-th identity with its K images
        (so each rank mines its triplets among P / world_size whole identities); one process: the batch."""
        if world_size <= 1:
            return batch
        groups = [batch[i : i + self.K] for i in range(0, len(batch), self.K)]
        return [index for group in groups[rank::world_size] for index in group]

    def batches(self, epoch: int) -> list[list[int]]:
        gen = torch.Generator().manual_seed(derive_seed(self.seed, "identity-batches", epoch))
        groups: list[list[list[int]]] = []
        for members in self.members:
            if len(members) < self.K:
                pick = torch.randint(len(members), (self.K,), generator=gen).tolist()
            else:
                pick = torch.randperm(len(members), generator=gen).tolist()
            shuffled = [members[i] for i in pick]
            groups.append([shuffled[i : i + self.K] for i in range(0, len(shuffled) - self.K + 1, self.K)])
        out: list[list[int]] = []
        alive = [i for i, g in enumerate(groups) if g]
        while len(alive) >= self.P:
            chosen = [alive[j] for j in torch.randperm(len(alive), generator=gen)[: self.P].tolist()]
            out.append([index for identity in chosen for index in groups[identity].pop()])
            alive = [i for i in alive if groups[i]]
        return out
