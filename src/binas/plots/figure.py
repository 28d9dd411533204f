"""A matplotlib `Figure` bound to the Agg canvas, and saving it: never pyplot, never a display."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DPI = 120  # screen-readable PNGs of a few hundred kB at most
PANEL_INCH = (4.2, 3.0)  # width, height of one subplot panel


def new_figure(rows: int, cols: int, *, panel: tuple[float, float] = PANEL_INCH) -> Any:
    """A `Figure` of `rows` x `cols` panels rendered by Agg, whatever backend the session uses."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel[0] * cols, panel[1] * rows))
    FigureCanvasAgg(fig)
    return fig


def save(fig: Any, path: str | Path) -> Path:
    """Write `fig` as PNG (white background) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path
