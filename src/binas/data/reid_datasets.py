"""`REID_DATASETS`: the re-ID data sets by name, and `load_reid_data`.

`digits-reid` is the bundled default (a stand-in built from scikit-learn's digits, not person re-ID:
see `binas.data.digits_reid`); `market1501` reads a local copy of Market-1501 (`binas.data.market1501`).
"""

from __future__ import annotations

import logging
from typing import Protocol

from binas.data.digits_reid import load_digits_reid
from binas.data.market1501 import load_market1501
from binas.data.reid import ReidData
from binas.registry import Registry

logger = logging.getLogger(__name__)

DEFAULT_REID_DATASET = "digits-reid"


class ReidLoader(Protocol):
    """What a `REID_DATASETS` entry is: a function building the three splits of one data set."""

    def __call__(
        self,
        *,
        data_dir: str | None,
        height: int | None,
        width: int | None,
        max_train_ids: int | None,
        max_test_ids: int | None,
    ) -> ReidData: ...


def _digits_reid(
    *,
    data_dir: str | None,
    height: int | None,
    width: int | None,
    max_train_ids: int | None,
    max_test_ids: int | None,
) -> ReidData:
    """`digits-reid` ignores `data_dir`: its data ship with scikit-learn."""
    return load_digits_reid(height=height, width=width, max_train_ids=max_train_ids, max_test_ids=max_test_ids)


REID_DATASETS: Registry[ReidLoader] = Registry("re-ID data set")
REID_DATASETS.register("digits-reid", _digits_reid)
REID_DATASETS.register("market1501", load_market1501)


def load_reid_data(
    name: str = DEFAULT_REID_DATASET,
    *,
    data_dir: str | None = None,
    height: int | None = None,
    width: int | None = None,
    max_train_ids: int | None = None,
    max_test_ids: int | None = None,
) -> ReidData:
    """Build the train / query / gallery splits of the registered re-ID data set `name`."""
    loader = REID_DATASETS.get(name)
    data = loader(data_dir=data_dir, height=height, width=width, max_train_ids=max_train_ids, max_test_ids=max_test_ids)
    logger.info(
        "loaded %s: train %d images of %d identities, query %d, gallery %d",
        name,
        len(data.train),
        data.info.num_train_ids,
        len(data.query),
        len(data.gallery),
    )
    return data
