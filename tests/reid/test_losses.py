"""Batch-hard triplet mining on hand-made distance matrices, and the losses' values."""

from __future__ import annotations

import math

import pytest
import torch

from binas.objectives.reid import batch_hard_triplet, hardest_pairs, pairwise_distances, similarity_distillation


def test_hardest_pairs_on_a_hand_made_matrix():
    labels = torch.tensor([0, 0, 1, 1])
    dist = torch.tensor(
        [
            [0.0, 2.0, 1.0, 5.0],
            [2.0, 0.0, 4.0, 0.5],
            [1.0, 4.0, 0.0, 3.0],
            [5.0, 0.5, 3.0, 0.0],
        ]
    )
    d_ap, d_an = hardest_pairs(dist, labels)
    assert d_ap.tolist() == [2.0, 2.0, 3.0, 3.0]  # the farthest same-label sample, never the anchor itself
    assert d_an.tolist() == [1.0, 0.5, 1.0, 0.5]  # the closest other-label sample


def test_anchor_without_negative_contributes_nothing():
    d_ap, d_an = hardest_pairs(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([3, 3]))
    assert d_ap.tolist() == [1.0, 1.0] and math.isinf(d_an[0])


def test_batch_hard_triplet_margin_and_soft_margin():
    x = torch.tensor([[0.0], [1.0], [3.0], [5.0]])  # labels 0 0 1 1: d_ap 1,1,2,2; d_an 3,2,2,4
    y = torch.tensor([0, 0, 1, 1])
    expected = [max(0.0, 0.5 + a - n) for a, n in zip([1, 1, 2, 2], [3, 2, 2, 4])]
    assert batch_hard_triplet(x, y, margin=0.5).item() == pytest.approx(sum(expected) / 4, abs=1e-5)
    soft = sum(math.log1p(math.exp(a - n)) for a, n in zip([1, 1, 2, 2], [3, 2, 2, 4])) / 4
    assert batch_hard_triplet(x, y, margin=None).item() == pytest.approx(soft, abs=1e-5)


def test_triplet_gradient_is_finite_with_duplicate_embeddings():
    x = torch.zeros(4, 3, requires_grad=True)
    batch_hard_triplet(x, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(x.grad).all()


def test_pairwise_distances_match_cdist():
    x, y = torch.randn(5, 4), torch.randn(3, 4)
    assert torch.allclose(pairwise_distances(x, y), torch.cdist(x, y), atol=1e-4)


def test_similarity_distillation_zero_for_a_rescaled_twin_and_width_free():
    s = torch.randn(6, 8)
    assert similarity_distillation(s, 3.0 * s).item() == pytest.approx(0.0, abs=1e-6)
    assert similarity_distillation(s, torch.randn(6, 16)).item() > 0
