"""Test images drawn with their true boxes (green, dashed) and predicted boxes (red, label:score)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from binas.plots.figure import new_figure, save

COLUMNS = 4
MIN_SCORE_DRAWN = 0.3


def draw_detections(
    images: Tensor,
    truths: Sequence[dict[str, Tensor]],
    predictions: Sequence[dict[str, Tensor]],
    info: Any,
    path: str | Path,
    *,
    min_score: float = MIN_SCORE_DRAWN,
) -> Path:
    """A grid of `images` (N×C×H×W, normalised with `info.mean/std`) with boxes; returns the PNG path."""
    from matplotlib.patches import Rectangle

    n = len(images)
    cols = min(COLUMNS, n)
    rows = math.ceil(n / cols)
    fig = new_figure(rows, cols, panel=(3.0, 3.0))
    mean = images.new_tensor(info.mean).view(1, -1, 1, 1)
    std = images.new_tensor(info.std).view(1, -1, 1, 1)
    pixels = (images * std + mean).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    names = info.class_names
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(pixels[i], interpolation="nearest")
        ax.set_axis_off()
        for box in truths[i]["boxes"].tolist():
            x1, y1, x2, y2 = box
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="lime", lw=1.2, ls="--"))
        pred = predictions[i]
        for box, label, score in zip(pred["boxes"].tolist(), pred["labels"].tolist(), pred["scores"].tolist()):
            if score < min_score:
                continue
            x1, y1, x2, y2 = box
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="red", lw=1.0))
            ax.text(x1, y1, f"{names[label]}:{score:.2f}", color="red", fontsize=7, va="bottom")
    fig.suptitle(f"green dashed: truth, red: predicted (score >= {min_score:.1f})", fontsize=9)
    return save(fig, path)
