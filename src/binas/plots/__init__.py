"""PNG plots of a run (matplotlib Agg, no pyplot state): curves, architecture heat maps, cell diagrams.

`draw_run_plots(run_dir)` (what `binas plot RUN_DIR` calls) redraws everything a run directory's
files allow into `RUN_DIR/plots/`.
"""

from binas.plots.curves import plot_curves
from binas.plots.heatmaps import plot_weights_final, plot_weights_over_epochs
from binas.plots.run import draw_run_plots

__all__ = ["draw_run_plots", "plot_curves", "plot_weights_final", "plot_weights_over_epochs"]
