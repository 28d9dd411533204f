"""The candidate operations of the DARTS cell space, by their DARTS names (verbatim).

The order is DARTS's (Liu et al., 2019, `genotypes.PRIMITIVES`), so alpha columns of published
checkpoints line up. The DCP-NAS release orders them differently; only the names matter for genotypes.
"""

from __future__ import annotations

PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

#: Ops without weights (DDPNAS's "non-parametric" group, spec ddpnas §2.2); `none` is excluded.
NON_PARAMETRIC: tuple[str, ...] = ("max_pool_3x3", "avg_pool_3x3", "skip_connect")
#: Ops with convolution weights.
PARAMETRIC: tuple[str, ...] = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")

#: Intermediate nodes per cell and the cell's input nodes (DARTS: 2 inputs, 4 steps, 14 edges).
STEPS = 4
NUM_INPUT_NODES = 2
#: The two cell types of a DARTS network (normal cells keep the resolution, reduction cells halve it).
CELL_KINDS: tuple[str, ...] = ("normal", "reduce")
