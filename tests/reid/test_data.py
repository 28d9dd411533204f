"""Market-1501 names and folder loader (on generated files), the digits-reid stand-in, the P x K sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from binas.data.digits_reid import CAMERAS, load_digits_reid, split_identities
from binas.data.market1501 import load_market1501, parse_market_name
from binas.data.reid import JUNK_ID, IdentityBatchSampler
from binas.data.reid_datasets import REID_DATASETS, load_reid_data
from binas.errors import DataError, RegistryError

MARKET_FILES = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000301_01.jpg",
        "0007_c3s1_000101_01.jpg",
        "0007_c1s1_000201_02.jpg",
        "0010_c5s2_001234_01.jpg",
    ],
    "query": ["0003_c1s1_000001_00.jpg", "0004_c2s1_000002_00.jpg"],
    "bounding_box_test": [
        "0003_c2s1_000101_01.jpg",
        "0004_c3s1_000101_01.jpg",
        "-1_c1s1_000001_00.jpg",
        "0000_c4s1_000002_00.jpg",
        "0003_c1s1_000003_00.jpg",
    ],
}


def make_market(root, size=(20, 10)):
    for folder, names in MARKET_FILES.items():
        (root / folder).mkdir(parents=True)
        for i, name in enumerate(names):
            pixels = np.full((*size, 3), 20 * i, dtype=np.uint8)
            Image.fromarray(pixels).save(root / folder / name)
    return root


def test_parse_market_names():
    assert parse_market_name("0002_c1s1_000451_03.jpg") == (2, 1)
    assert parse_market_name("-1_c3s2_000001_00.jpg") == (-1, 3)
    assert parse_market_name("0000_c6s1_000002_00.jpg") == (0, 6)
    with pytest.raises(DataError, match="not a Market-1501 file name"):
        parse_market_name("Thumbs.jpg")


def test_market_loader_splits_relabels_and_keeps_junk_in_the_gallery(tmp_path):
    data = load_market1501(make_market(tmp_path), height=16, width=8)
    assert data.info.num_train_ids == 3 and (data.info.height, data.info.width) == (16, 8)
    assert data.train.labels.tolist() == [0, 0, 1, 1, 2] and data.train.pids.tolist() == [2, 2, 7, 7, 10]
    assert sorted(data.query.pids.tolist()) == [3, 4]
    assert sorted(data.gallery.pids.tolist()) == [JUNK_ID, 0, 3, 3, 4]  # junk and background stay as negatives
    x, y, cams = data.gallery.batch([0, 1])
    assert x.shape == (2, 3, 16, 8) and len(y) == len(cams) == 2
    assert data.train.camids.tolist() == [1, 2, 1, 3, 5]


def test_market_loader_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="--data-dir"):
        load_market1501(None)
    with pytest.raises(DataError, match="not found"):
        load_market1501(tmp_path / "missing")
    with pytest.raises(DataError, match="bounding_box_train"):
        load_market1501(tmp_path)
    root = make_market(tmp_path / "m")
    (root / "query" / "0003_c1s1_000009_00.jpg").write_bytes(b"not a jpeg")
    data = load_market1501(root, height=8, width=4)
    bad = [i for i, p in enumerate(data.query.paths) if p.name == "0003_c1s1_000009_00.jpg"]
    with pytest.raises(DataError, match="cannot read image"):
        data.query.images(bad)


def test_registry_names_and_unknown_name():
    assert {"digits-reid", "market1501"} <= set(REID_DATASETS.names())
    with pytest.raises(RegistryError):
        load_reid_data("no-such-set")


@pytest.fixture(scope="module")
def digits():
    return load_digits_reid(max_train_ids=40)


def test_digits_reid_is_open_set_and_fixed(digits):
    train_ids, test_ids = split_identities()
    assert not set(train_ids.tolist()) & set(test_ids.tolist())
    assert len(train_ids) + len(test_ids) == 1797
    assert not set(digits.train.pids.tolist()) & (set(digits.query.pids.tolist()) | set(digits.gallery.pids.tolist()))
    assert set(digits.query.pids.tolist()) == set(digits.gallery.pids.tolist())
    again = load_digits_reid(max_train_ids=40)
    assert torch.equal(again.query.images(range(10)), digits.query.images(range(10)))
    assert torch.equal(again.train.pids, digits.train.pids)
    assert digits.info.stand_in and digits.info.num_train_ids == 40


def test_digits_reid_views_cameras_and_queries(digits):
    assert Counter(digits.train.labels.tolist()) == dict.fromkeys(range(40), len(CAMERAS))
    assert len(digits.gallery) == 500 * len(CAMERAS) and len(digits.query) == 1000
    # a query's own camera is in the gallery (the protocol must drop it), and the query is a different shot
    q_pid, q_cam = int(digits.query.pids[0]), int(digits.query.camids[0])
    same = ((digits.gallery.pids == q_pid) & (digits.gallery.camids == q_cam)).nonzero().flatten().tolist()
    assert len(same) == 1
    assert not torch.equal(digits.gallery.images(same)[0], digits.query.images([0])[0])
    assert digits.train.images([0]).shape == (1, 3, 16, 16)


def test_identity_sampler_gives_p_by_k_batches_deterministically():
    labels = torch.tensor([0] * 6 + [1] * 4 + [2] * 2 + [3] * 9 + [4] * 5)
    sampler = IdentityBatchSampler(labels, ids_per_batch=2, images_per_id=3, seed=5)
    batches = sampler.batches(0)
    assert batches and all(len(b) == 6 for b in batches)
    for b in batches:
        ids = labels[b].tolist()
        counts = Counter(ids)
        assert len(counts) == 2 and set(counts.values()) == {3}
    assert sampler.batches(0) == batches and sampler.batches(1) != batches
    # identity 2 has fewer than K images: drawn with replacement
    flat = [i for b in sampler.batches(0) + sampler.batches(1) + sampler.batches(2) for i in b]
    assert set(flat) <= set(range(len(labels)))
    with pytest.raises(DataError, match="needs P=6"):
        IdentityBatchSampler(labels, ids_per_batch=6, images_per_id=2, seed=0)
