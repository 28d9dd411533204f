"""The query / gallery retrieval protocol of Market-1501 (Zheng et al., 2015): CMC rank-k and mAP.

For each query the gallery is ranked by distance; gallery items with the query's identity AND camera are
removed (the same view, not a re-identification), and so are junk items (identity -1). A query with no
true match left is skipped (as Market-1501's official code and torchreid do). CMC rank-k is the fraction
of queries whose first true match is within the first k; AP is the mean over the true matches of the
precision at each one's rank, and mAP its mean over the queries.

No maintained package computes this without torchvision (torchreid's `eval_market1501` is the reference,
not installable here); this is a direct, vectorised-per-query implementation, checked on hand-made cases
in `tests/reid/test_retrieval.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from binas.errors import DataError

JUNK_ID = -1
DEFAULT_RANKS = (1, 5, 10)


@dataclass(frozen=True)
class RetrievalResult:
    """CMC at `ranks` (fractions in [0, 1]), mAP, and how many queries counted."""

    cmc: dict[int, float]
    mAP: float
    num_queries: int
    num_skipped: int

    def to_dict(self) -> dict[str, float | int]:
        return {**{f"rank{k}": v for k, v in self.cmc.items()}, "mAP": self.mAP, "num_queries": self.num_queries}


def distance_matrix(query: Tensor, gallery: Tensor, metric: str = "euclidean") -> Tensor:
    """Q x G distances: Euclidean, or cosine distance 1 - cos (on L2-normalised features)."""
    if metric == "cosine":
        q = torch.nn.functional.normalize(query, dim=1)
        g = torch.nn.functional.normalize(gallery, dim=1)
        return 1.0 - q @ g.T
    if metric == "euclidean":
        return torch.cdist(query.double(), gallery.double()).float()
    raise DataError(f"unknown distance '{metric}'; choose euclidean or cosine")


def evaluate_retrieval(
    dist: Tensor | np.ndarray,
    q_pids: Tensor | np.ndarray,
    g_pids: Tensor | np.ndarray,
    q_camids: Tensor | np.ndarray,
    g_camids: Tensor | np.ndarray,
    ranks: tuple[int, ...] = DEFAULT_RANKS,
) -> RetrievalResult:
    """CMC at `ranks` and mAP of a Q x G distance matrix under the Market-1501 protocol.

    Ties in distance are broken by gallery order (a stable sort), so results are deterministic.
    """
    d, qp, gp, qc, gc = (
        np.asarray(a.cpu() if isinstance(a, Tensor) else a) for a in (dist, q_pids, g_pids, q_camids, g_camids)
    )
    if d.shape != (len(qp), len(gp)) or len(qc) != len(qp) or len(gc) != len(gp):
        raise DataError(f"distance matrix {d.shape} does not match {len(qp)} queries and {len(gp)} gallery items")
    order = np.argsort(d, axis=1, kind="stable")
    hits_at = np.zeros(max(ranks), dtype=np.float64)
    aps: list[float] = []
    for i in range(len(qp)):
        ranked = order[i]
        keep = ~(((gp[ranked] == qp[i]) & (gc[ranked] == qc[i])) | (gp[ranked] == JUNK_ID))
        matches = gp[ranked][keep] == qp[i]
        if not matches.any():
            continue
        first = int(np.argmax(matches))
        if first < len(hits_at):
            hits_at[first:] += 1.0
        positions = np.flatnonzero(matches) + 1  # 1-based ranks of the true matches
        aps.append(float(np.mean(np.arange(1, len(positions) + 1) / positions)))
    counted = len(aps)
    if counted == 0:
        raise DataError("no query has a true match in the gallery (other than from its own camera)")
    cmc = {k: float(hits_at[k - 1] / counted) for k in ranks}
    return RetrievalResult(cmc, float(np.mean(aps)), counted, len(qp) - counted)
