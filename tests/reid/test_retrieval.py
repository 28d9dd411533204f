"""CMC / mAP under the Market-1501 protocol, on cases checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from binas.errors import DataError
from binas.metrics.retrieval import distance_matrix, evaluate_retrieval


def test_perfect_ranking_scores_one():
    # two queries, each gallery item's identity ranked first is the query's
    dist = np.array([[0.1, 0.9, 0.8], [0.9, 0.1, 0.2]])
    r = evaluate_retrieval(dist, [1, 2], [1, 2, 2], [0, 0], [1, 1, 1])
    assert r.cmc[1] == 1.0 and r.mAP == 1.0 and r.num_queries == 2


def test_average_precision_of_matches_at_ranks_one_and_three():
    # ranking: match, non-match, match, non-match -> AP = (1/1 + 2/3) / 2
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    r = evaluate_retrieval(dist, [7], [7, 8, 7, 9], [0], [1, 1, 2, 2])
    assert r.mAP == pytest.approx((1.0 + 2.0 / 3.0) / 2.0)
    assert r.cmc == {1: 1.0, 5: 1.0, 10: 1.0}


def test_cmc_counts_the_first_true_match():
    dist = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    # query 0: first match at rank 3; query 1: at rank 1
    r = evaluate_retrieval(dist, [5, 5], [6, 6, 5], [0, 0], [1, 1, 1], ranks=(1, 2, 3))
    assert r.cmc == {1: 0.5, 2: 0.5, 3: 1.0}
    assert r.mAP == pytest.approx((1 / 3 + 1.0) / 2)


def test_same_identity_same_camera_is_excluded():
    # the nearest gallery item is the query's identity from the query's camera: not a re-identification
    dist = np.array([[0.0, 0.5, 0.6]])
    same_cam = evaluate_retrieval(dist, [3], [3, 4, 3], [1], [1, 2, 2])
    assert same_cam.cmc[1] == 0.0  # after exclusion: [4, 3] -> first match at rank 2
    assert same_cam.mAP == pytest.approx(0.5)
    other_cam = evaluate_retrieval(dist, [3], [3, 4, 3], [1], [2, 2, 2])  # same item from another camera counts
    assert other_cam.cmc[1] == 1.0
    assert other_cam.mAP == pytest.approx((1.0 + 2.0 / 3.0) / 2.0)


def test_junk_gallery_items_are_ignored_and_distractors_count():
    dist = np.array([[0.1, 0.2, 0.3]])
    # a junk box (-1) ranked first is dropped; a background distractor (0) ranked first is a miss
    assert evaluate_retrieval(dist, [4], [-1, 4, 5], [1], [2, 2, 2]).cmc[1] == 1.0
    assert evaluate_retrieval(dist, [4], [0, 4, 5], [1], [2, 2, 2]).cmc[1] == 0.0


def test_query_without_a_match_is_skipped_and_none_is_an_error():
    dist = np.array([[0.1, 0.2], [0.2, 0.1]])
    r = evaluate_retrieval(dist, [1, 9], [1, 2], [0, 0], [1, 1])
    assert (r.num_queries, r.num_skipped, r.cmc[1]) == (1, 1, 1.0)
    with pytest.raises(DataError, match="no query has a true match"):
        evaluate_retrieval(dist, [8, 9], [1, 2], [0, 0], [1, 1])
    with pytest.raises(DataError, match="does not match"):
        evaluate_retrieval(dist, [1], [1, 2], [0], [1, 1])


def test_distance_matrix_euclidean_and_cosine():
    q = torch.tensor([[1.0, 0.0]])
    g = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    assert torch.allclose(distance_matrix(q, g), torch.tensor([[2.0, 5**0.5]]))
    assert torch.allclose(distance_matrix(q, g, "cosine"), torch.tensor([[0.0, 1.0]]))
    with pytest.raises(DataError):
        distance_matrix(q, g, "manhattan")
