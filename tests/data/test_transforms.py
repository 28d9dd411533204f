"""Batch-wise tensor augmentation: crop with padding, flip, cutout."""

from __future__ import annotations

import torch

from binas.data import cutout, random_crop_flip


def _ramp(batch: int = 1, channels: int = 2, size: int = 5) -> torch.Tensor:
    return torch.arange(batch * channels * size * size, dtype=torch.float32).view(batch, channels, size, size) + 1


def test_flip_only_reverses_columns() -> None:
    x = _ramp(batch=64)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=0)
    flipped = (out == x.flip(3)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert torch.all(flipped ^ kept)
    assert 0 < int(flipped.sum()) < 64  # both outcomes happen at p = 0.5


def test_no_padding_no_flip_is_identity() -> None:
    x = _ramp(batch=3)
    assert torch.equal(random_crop_flip(x, torch.Generator().manual_seed(0), padding=0, flip=False), x)


def test_crop_with_padding_shifts_content() -> None:
    x = _ramp(batch=200, channels=1, size=6)
    out = random_crop_flip(x, torch.Generator().manual_seed(1), padding=2, flip=False)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    shifts = set()
    for b in range(len(x)):
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(out[b], padded[b, :, dy : dy + 6, dx : dx + 6])
        ]
        assert len(matches) == 1  # every output is exactly one window of the zero-padded input
        shifts.add(matches[0])
    assert len(shifts) == 25  # all (2·2+1)² offsets occur


def test_deterministic_for_a_generator_and_sample_independent() -> None:
    x = _ramp(batch=16)
    a = random_crop_flip(x, torch.Generator().manual_seed(7))
    b = random_crop_flip(x, torch.Generator().manual_seed(7))
    c = random_crop_flip(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, _ramp(batch=16))  # input untouched


def test_crop_flip_keeps_gradients_and_dtype() -> None:
    x = _ramp(batch=2).requires_grad_()
    out = random_crop_flip(x, torch.Generator().manual_seed(0))
    out.sum().backward()
    assert x.grad is not None and out.dtype == x.dtype


def test_cutout_zeroes_one_clipped_square_per_sample() -> None:
    x = torch.ones(50, 3, 8, 8)
    out = cutout(x, torch.Generator().manual_seed(0), length=4)
    zeros = out == 0
    assert torch.equal(zeros[:, 0], zeros[:, 2])  # same square on every channel
    counts = zeros[:, 0].flatten(1).sum(1)
    assert counts.max() == 16 and counts.min() >= 4  # full 4×4 inside, at least a 2×2 corner when clipped
    assert torch.equal(cutout(x, torch.Generator().manual_seed(0), length=4), out)
    assert torch.all(x == 1)
