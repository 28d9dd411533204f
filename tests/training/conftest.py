"""A retraining that takes a second or two: digits at 8x8, 96 samples, C=4, 3 cells, 1 epoch per step."""

from __future__ import annotations

from binas.config.io import apply_overrides, from_dict
from binas.config.schema import RunConfig
from tests.conftest import TEST_THREADS

TINY_TRAIN = (
    "device=cpu",
    f"num_threads={TEST_THREADS}",
    "data.image_size=8",
    "data.max_train_samples=96",
    "train.net.channels=4",
    "train.net.layers=3",
    "train.epochs=1",
    "train.batch_size=32",
)


def tiny_train_config(*overrides: str) -> RunConfig:
    """`RunConfig` of a tiny retraining, with extra `key=value` overrides."""
    return from_dict(RunConfig, apply_overrides({}, [*TINY_TRAIN, *overrides]))
