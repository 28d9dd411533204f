"""Shared tiny fixtures: every test network is a few cells of a few channels on 8x8 images."""

from __future__ import annotations

import pytest
import torch

from binas.config.schema import DataConfig, RunConfig, SearchConfig, SpaceConfig
from binas.strategies import STRATEGIES

#: Thread count fixed for the whole suite: float32 binary nets depend on it (implementation-notes §2).
TEST_THREADS = 1


@pytest.fixture(autouse=True)
def _fixed_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(previous)


def tiny_run_config(
    method: str = "darts", *, epochs: int | None = 2, binary: bool | None = False, **options
) -> RunConfig:
    """A search that takes a second or two: digits at 8x8, 96 samples, C=4, 3 cells. `epochs` and `binary`
    are left null for methods that reject them (their own schedule / precision)."""
    cls = STRATEGIES.get(method)
    epochs = epochs if cls.uses_search_epochs else None
    binary = binary if cls.uses_search_binary else None
    return RunConfig(
        seed=0,
        device="cpu",
        num_threads=TEST_THREADS,
        data=DataConfig(name="digits", image_size=8, max_train_samples=96, augment=True),
        space=SpaceConfig(channels=4, layers=3),
        search=SearchConfig(method=method, epochs=epochs, batch_size=32, binary=binary, options=options),
    )


@pytest.fixture
def tiny_config():
    return tiny_run_config
