"""Batch-wise tensor augmentation: padded random crop + horizontal flip, and Cutout.

Why not torchvision: it is an optional extra (`binas[vision]`), and its per-image PIL transforms run in
the DataLoader, item by item, on the CPU. These functions take a whole B×C×H×W batch on whatever device it
already lives on (after the loader moved it), draw per-sample offsets from an explicit
`torch.Generator`, and do the work as one gather, so augmentation is fast and reproducible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

CROP_PADDING = 4  # zero padding before the 32×32 random crop, CIFAR standard (He et al., 2016; DARTS)
FLIP_PROBABILITY = 0.5  # horizontal flip probability, same sources
CUTOUT_LENGTH = 16  # Cutout square side for CIFAR-10 (DeVries & Taylor, 2017; DARTS --cutout_length)


def _draw_device(x: Tensor, generator: torch.Generator | None) -> torch.device:
    """Random numbers must be drawn on the generator's device, then moved to the data's device."""
    return generator.device if generator is not None else x.device


def _randint(high: int, n: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """`n` integers uniform in [0, high), drawn with `generator`, returned on `x.device`."""
    draws = torch.randint(0, high, (n,), generator=generator, device=_draw_device(x, generator))
    return draws.to(x.device)


def _check_batch(x: Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected a B×C×H×W batch, got shape {tuple(x.shape)}")


def random_crop_flip(
    x: Tensor,
    generator: torch.Generator | None = None,
    padding: int = CROP_PADDING,
    flip: bool = True,
    flip_probability: float = FLIP_PROBABILITY,
) -> Tensor:
    """Zero-pad each image by `padding`, crop a random H×W window back out, and flip it horizontally.

    Each sample gets its own offsets and flip. The output is a new tensor on `x.device`; for a given
    generator state the result is deterministic.

    Args:
        x: B×C×H×W batch.
        generator: source of randomness (CPU or on `x.device`); `None` uses torch's global generator.
        padding: zeros added on every side; 0 disables the crop.
        flip: whether to flip at all.
        flip_probability: chance that one sample is flipped.
    """
    _check_batch(x)
    batch, _, height, width = x.shape
    offsets_y = _randint(2 * padding + 1, batch, x, generator)
    offsets_x = _randint(2 * padding + 1, batch, x, generator)
    if flip:
        flips = torch.rand(batch, generator=generator, device=_draw_device(x, generator)) < flip_probability
        flips = flips.to(x.device)
    else:
        flips = torch.zeros(batch, dtype=torch.bool, device=x.device)

    padded = F.pad(x, (padding, padding, padding, padding)) if padding > 0 else x
    rows = offsets_y[:, None] + torch.arange(height, device=x.device)  # B×H
    cols_forward = torch.arange(width, device=x.device)
    cols = offsets_x[:, None] + torch.where(flips[:, None], cols_forward.flip(0), cols_forward)  # B×W
    # Gather on a channels-last view: (B, H, W, C) indexed by (b, row, col) in one advanced-indexing op.
    samples = torch.arange(batch, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[samples, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def cutout(x: Tensor, generator: torch.Generator | None = None, length: int = CUTOUT_LENGTH) -> Tensor:
    """Zero a `length`×`length` square (clipped at the borders) at a random center in each image.

    As in DeVries & Taylor (2017) the center is uniform over the whole image, so the square may be
    partly outside it. Returns a new tensor; `x` is unchanged.
    """
    _check_batch(x)
    batch, _, height, width = x.shape
    centers_y = _randint(height, batch, x, generator)[:, None, None]
    centers_x = _randint(width, batch, x, generator)[:, None, None]
    ys = torch.arange(height, device=x.device)[None, :, None]
    xs = torch.arange(width, device=x.device)[None, None, :]
    half = length // 2
    inside = (
        (ys >= centers_y - half)
        & (ys < centers_y - half + length)
        & (xs >= centers_x - half)
        & (xs < centers_x - half + length)
    )
    return x.masked_fill(inside[:, None, :, :], 0.0)
