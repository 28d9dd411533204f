"""Market-1501 (Zheng et al., 2015) read from its own folder layout with Pillow; nothing is downloaded.

Layout: `DATA_DIR/bounding_box_train/`, `DATA_DIR/query/`, `DATA_DIR/bounding_box_test/` (the gallery),
files named `PPPP_cCsS_FFFFFF_NN.jpg`: identity PPPP, camera C (1..6), sequence S, frame, box. The
standard protocol: identity -1 marks junk boxes (kept in the gallery as `JUNK_ID`, which the evaluation
ignores, as the official `junk_index`); identity 0000 marks background boxes (distractors: kept in the
gallery as true negatives). Neither is an identity to train on or to query, so both are left out of
`train` and `query`. Training identities are relabelled 0..750.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from binas.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD
from binas.data.reid import JUNK_ID, FileReidSplit, ReidData, ReidInfo, relabel
from binas.errors import DataError

logger = logging.getLogger(__name__)

#: Split -> folder of the official release.
MARKET_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
#: Bag of Tricks input size (height, width): the 2:1 aspect of a pedestrian box.
MARKET_SIZE = (256, 128)
#: Background boxes (not an identity; gallery distractors).
BACKGROUND_ID = 0
_NAME = re.compile(r"^(-?\d+)_c(\d+)")


def parse_market_name(name: str) -> tuple[int, int]:
    """(identity, camera) of a Market-1501 file name such as `0002_c1s1_000451_03.jpg` -> (2, 1).

    Junk boxes are `-1_c...` -> (-1, camera). A name of another form raises a one-line `DataError`.
    """
    match = _NAME.match(Path(name).name)
    if match is None:
        raise DataError(
            f"{name}: not a Market-1501 file name (expected IDENTITY_cCAMERA..., e.g. 0002_c1s1_000451_03.jpg)"
        )
    pid, camid = int(match.group(1)), int(match.group(2))
    if pid < JUNK_ID:
        raise DataError(f"{name}: identity {pid} is below -1")
    return pid, camid


def _scan(folder: Path) -> tuple[list[Path], list[int], list[int]]:
    if not folder.is_dir():
        raise DataError(f"Market-1501 folder {folder} not found (expected {', '.join(MARKET_FOLDERS.values())})")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    parsed = [parse_market_name(p.name) for p in paths]
    return paths, [p for p, _ in parsed], [c for _, c in parsed]


def load_market1501(
    data_dir: str | Path | None,
    *,
    height: int | None = None,
    width: int | None = None,
    max_train_ids: int | None = None,
    max_test_ids: int | None = None,
) -> ReidData:
    """Market-1501's train / query / gallery splits from `data_dir`, resized to height x width (256 x 128).
    `max_train_ids` / `max_test_ids` keep the first N identities of the training / test splits (quick runs)."""
    if data_dir is None:
        raise DataError("market1501 reads a local copy: give its folder with --data-dir (or data.data_dir)")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"Market-1501 folder not found: {root}")
    size = (height or MARKET_SIZE[0], width or MARKET_SIZE[1])
    splits = {}
    for split, folder in MARKET_FOLDERS.items():
        paths, pids, camids = _scan(root / folder)
        keep = [i for i, pid in enumerate(pids) if split == "gallery" or pid not in (JUNK_ID, BACKGROUND_ID)]
        limit = max_train_ids if split == "train" else max_test_ids
        if limit is not None:  # the first N identities (a test split keeps its junk and distractors)
            allowed = set(sorted({pids[i] for i in keep if pids[i] > BACKGROUND_ID})[:limit])
            keep = [i for i in keep if pids[i] in allowed or pids[i] in (JUNK_ID, BACKGROUND_ID)]
        if not keep:
            raise DataError(f"{root / folder} holds no usable images")
        pid_t = torch.tensor([pids[i] for i in keep])
        labels = relabel(pid_t) if split == "train" else None
        splits[split] = FileReidSplit(
            [paths[i] for i in keep],
            pid_t,
            torch.tensor([camids[i] for i in keep]),
            labels,
            size=size,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        )
        logger.info("market1501/%s: %d images, %d identities", split, len(keep), len(set(pid_t.tolist())))
    num_ids = int(splits["train"].labels.max()) + 1
    info = ReidInfo("market1501", num_ids, 3, size[0], size[1], IMAGENET_MEAN, IMAGENET_STD)
    return ReidData(splits["train"], splits["query"], splits["gallery"], info)
