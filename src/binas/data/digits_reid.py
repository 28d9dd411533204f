"""`digits-reid`: an open-set retrieval task made from scikit-learn's digits. A STAND-IN, NOT PERSON RE-ID.

It exists so that `binas reid` runs on a fresh machine, offline, in minutes, with the same protocol as
Market-1501. What the words mean here:

- an *identity* is one source image of the 1797 handwritten digits (one particular written digit, not
  a digit class: two different 3s are two identities, hard negatives of each other);
- a *camera* is a fixed kind of deterministic distortion: 0 shift, 1 zoom, 2 rotation, 3 sensor noise,
  4 low contrast / raised background, 5 blur. Every view also gets a small random shift, so two views
  from one camera differ;
- a *shot* is one draw of a camera's random parameters (seeded per source image, camera and shot).

Splits (fixed seed, independent of the run seed): 500 source images are test identities, the other
1297 train identities: no test identity is ever seen in training (open set). `train`: shot 0 of every
camera of the train identities (6 images each). `gallery`: shot 0 of every camera of the test
identities; `query`: shot 1 of two cameras per test identity. The protocol then hides the gallery view
from a query's own camera (same identity, same camera), so each query has 5 true matches among 3000.
Images are 16 x 16 (the 8 x 8 digits upsampled), grey replicated to 3 channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from binas.data.reid import InMemoryReidSplit, ReidData, ReidInfo, relabel, resize_batch
from binas.seeds import derive_seed

DIGITS_REID_SIZE = 16
DIGITS_REID_CHANNELS = 3
DIGITS_REID_TEST_IDS = 500
DIGITS_REID_QUERIES_PER_ID = 2
DIGITS_REID_SEED = 20_190_417  # fixed: the split and the views never depend on the run seed
_DIGITS_MAX_PIXEL = 16.0  # sklearn load_digits: pixels are integers in 0..16


@dataclass(frozen=True)
class Camera:
    """The distortion ranges of one camera (uniform draws within +-range, or within [lo, hi])."""

    name: str
    shift: float = 1.0  # pixels at 16 x 16
    zoom: tuple[float, float] = (1.0, 1.0)
    rotate: float = 0.0  # degrees
    noise: float = 0.0  # std of additive Gaussian noise (image in [0, 1])
    gain: tuple[float, float] = (1.0, 1.0)  # contrast factor
    offset: tuple[float, float] = (0.0, 0.0)  # added background level
    blur: bool = False


CAMERAS = (
    Camera("shift", shift=3.0),
    Camera("zoom", zoom=(0.7, 1.3)),
    Camera("rotate", rotate=25.0),
    Camera("noise", noise=0.15),
    Camera("contrast", gain=(0.35, 0.7), offset=(0.15, 0.45)),
    Camera("blur", blur=True),
)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def camera_view(grey: Tensor, camera: int, shot: int) -> Tensor:
    """Shot `shot` of camera `camera` of every image in `grey` (N x 1 x S x S in [0, 1]); deterministic."""
    cam = CAMERAS[camera]
    n, size = grey.shape[0], grey.shape[-1]
    gen = torch.Generator().manual_seed(derive_seed(DIGITS_REID_SEED, "view", camera, shot))
    angle = _uniform(n, -cam.rotate, cam.rotate, gen) * (math.pi / 180)
    scale = _uniform(n, *cam.zoom, gen)
    shift = _uniform(2 * n, -cam.shift, cam.shift, gen).view(n, 2) * (2.0 / size)  # pixels -> [-1, 1] units
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) / scale, -torch.sin(angle) / scale
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) / scale, torch.cos(angle) / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(grey.shape), align_corners=False)
    out = F.grid_sample(grey, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if cam.blur:
        kernel = torch.tensor([1.0, 2.0, 1.0])
        kernel = (kernel[:, None] * kernel[None, :] / 16.0).view(1, 1, 3, 3)
        out = F.conv2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), kernel)
    gain = _uniform(n, *cam.gain, gen).view(n, 1, 1, 1)
    offset = _uniform(n, *cam.offset, gen).view(n, 1, 1, 1)
    out = out * gain + offset
    if cam.noise:
        out = out + cam.noise * torch.randn(out.shape, generator=gen)
    return out.clamp_(0.0, 1.0)


@lru_cache(maxsize=1)
def _source_images() -> Tensor:
    """The 1797 digits as N x 1 x 16 x 16 grey images in [0, 1]."""
    from sklearn import datasets as sklearn_datasets  # lazy: importing scikit-learn takes about a second

    images = torch.from_numpy(sklearn_datasets.load_digits().images).float().div_(_DIGITS_MAX_PIXEL)
    return resize_batch(images.unsqueeze(1), DIGITS_REID_SIZE, DIGITS_REID_SIZE)


def split_identities() -> tuple[Tensor, Tensor]:
    """(train identities, test identities): disjoint sets of source-image indices, sorted, fixed."""
    n = _source_images().shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(DIGITS_REID_SEED, "split")))
    return order[DIGITS_REID_TEST_IDS:].sort().values, order[:DIGITS_REID_TEST_IDS].sort().values


@lru_cache(maxsize=2 * len(CAMERAS))
def _all_views(camera: int, shot: int) -> Tensor:
    """`camera_view` of every source image (computed once per process)."""
    return camera_view(_source_images(), camera, shot)


def _views(ids: Tensor, cameras: list[int], shot: int) -> tuple[Tensor, Tensor, Tensor]:
    """Views of identities `ids` from `cameras` (one shot): images, pids, camids (identity-major order)."""
    per_camera = [_all_views(c, shot)[ids] for c in cameras]
    images = torch.stack(per_camera, dim=1).flatten(0, 1)
    pids = ids.repeat_interleave(len(cameras))
    camids = torch.tensor(cameras).repeat(len(ids))
    return images, pids, camids


def _query_views(ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Shot 1 of `DIGITS_REID_QUERIES_PER_ID` cameras per identity, chosen with a fixed seed."""
    gen = torch.Generator().manual_seed(derive_seed(DIGITS_REID_SEED, "query-cameras"))
    chosen = torch.stack([torch.randperm(len(CAMERAS), generator=gen)[:DIGITS_REID_QUERIES_PER_ID] for _ in ids])
    views = torch.stack([_all_views(c, shot=1)[ids] for c in range(len(CAMERAS))], dim=1)
    rows = torch.arange(len(ids)).repeat_interleave(DIGITS_REID_QUERIES_PER_ID)
    cams = chosen.flatten()
    return views[rows, cams], ids[rows], cams


def load_digits_reid(
    *,
    height: int | None = None,
    width: int | None = None,
    max_train_ids: int | None = None,
    max_test_ids: int | None = None,
) -> ReidData:
    """The bundled `digits-reid` stand-in (see the module docstring), normalised with train statistics.
    `max_train_ids` / `max_test_ids` keep the first N identities of a split (quick runs and tests)."""
    train_ids, test_ids = split_identities()
    train_ids, test_ids = train_ids[:max_train_ids], test_ids[:max_test_ids]
    cameras = list(range(len(CAMERAS)))
    parts = {
        "train": _views(train_ids, cameras, shot=0),
        "gallery": _views(test_ids, cameras, shot=0),
        "query": _query_views(test_ids),
    }
    h, w = height or DIGITS_REID_SIZE, width or DIGITS_REID_SIZE
    mean, std = float(parts["train"][0].mean()), float(parts["train"][0].std())
    splits = {}
    for name, (grey, pids, camids) in parts.items():
        images = ((resize_batch(grey, h, w) - mean) / std).repeat(1, DIGITS_REID_CHANNELS, 1, 1)
        splits[name] = InMemoryReidSplit(images, pids, camids, relabel(pids) if name == "train" else None)
    info = ReidInfo(
        "digits-reid",
        len(train_ids),
        DIGITS_REID_CHANNELS,
        h,
        w,
        (mean,) * DIGITS_REID_CHANNELS,
        (std,) * DIGITS_REID_CHANNELS,
        hflip=False,  # a flipped digit is another shape
        augment_by_default=False,  # the cameras already are the augmentations
        stand_in=True,
    )
    return ReidData(splits["train"], splits["query"], splits["gallery"], info)
