"""Re-identification losses: batch-hard triplet (Hermans et al., 2017), the ID loss, embedding distillation.

`batch_hard_triplet` takes the embeddings of a P x K batch: for each anchor, the farthest same-identity
sample (hardest positive) and the closest other-identity sample (hardest negative), with a margin
`max(0, m + d_ap - d_an)` or the soft margin `log(1 + exp(d_ap - d_an))` (Hermans et al., Eq. 5 and
Sec. 3). `hardest_pairs` does the mining on any distance matrix, so it is tested on hand-made ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Added under the square root of the Euclidean distance: its gradient is infinite at 0 (a sample and
#: itself), and the mining reads the diagonal.
DISTANCE_EPS = 1e-12


def pairwise_distances(x: Tensor, y: Tensor | None = None, *, squared: bool = False) -> Tensor:
    """Euclidean distances between the rows of `x` (N x D) and of `y` (M x D, default `x`): N x M."""
    y = x if y is None else y
    d2 = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    d2 = d2.clamp_min(0.0)
    return d2 if squared else (d2 + DISTANCE_EPS).sqrt()


def hardest_pairs(dist: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """(hardest positive distance, hardest negative distance) per anchor of an N x N distance matrix.

    The positive is the farthest sample with the anchor's label other than the anchor itself; the
    negative the closest one with another label. Anchors without a positive get d_ap = 0, without a
    negative d_an = +inf (their loss is then 0 with a margin).
    """
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=dist.device)
    positive = same & ~eye
    d_ap = torch.where(positive, dist, torch.zeros_like(dist)).amax(dim=1)
    d_an = torch.where(same, torch.full_like(dist, float("inf")), dist).amin(dim=1)
    return d_ap, d_an


def batch_hard_triplet(embeddings: Tensor, labels: Tensor, margin: float | None = 0.3) -> Tensor:
    """Batch-hard triplet loss, averaged over anchors; `margin=None`: soft margin."""
    d_ap, d_an = hardest_pairs(pairwise_distances(embeddings), labels)
    if margin is None:
        return F.softplus(d_ap - d_an).mean()
    return F.relu(margin + d_ap - d_an).mean()


def id_loss(logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Identity cross-entropy (with label smoothing, Szegedy et al., 2016; Bag of Tricks uses 0.1)."""
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


def similarity_distillation(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared difference of the two batches' cosine-similarity matrices, teacher detached.

    Distils how a real network arranges a batch in its embedding space (similarity-preserving KD, Tung &
    Mori, 2019) rather than its coordinates, so student and teacher may differ in width.
    """
    s = F.normalize(student, dim=1)
    t = F.normalize(teacher.detach(), dim=1)
    return (s @ s.T - t @ t.T).pow(2).mean()
