"""Constrained DARTS cells: the enumerator yields only cells meeting the height and N constraints."""

from __future__ import annotations

import numpy as np
import pytest

from binas.generation.budgets import GenerationError
from binas.generation.darts_constraints import (
    best_cell,
    cell_graphs,
    constrained_genotype,
    enumerate_cells,
    graph_height,
)
from binas.genotype import Genotype
from binas.space.primitives import NON_PARAMETRIC


def _height(pairs) -> int:
    heights: dict[int, int] = {0: 0, 1: 0}
    for i in range(0, len(pairs), 2):
        heights[2 + i // 2] = 1 + max(heights[pairs[i][1]], heights[pairs[i + 1][1]])
    return max(heights.values())


def test_graph_count_and_heights():
    graphs = cell_graphs(4)
    assert len(graphs) == 1 * 3 * 6 * 10 == 180
    assert graph_height(((0, 1), (0, 1), (0, 1), (0, 1))) == 1
    assert graph_height(((0, 1), (0, 2), (1, 3), (0, 4))) == 4
    assert {graph_height(g) for g in graphs} == {1, 2, 3, 4}


@pytest.mark.parametrize("height, non_param", [(1, 0), (2, 2), (3, 5), (4, 8)])
def test_enumerated_cells_meet_the_constraints(height, non_param):
    theta = np.random.default_rng(0).dirichlet(np.ones(8), size=14)
    cells = list(enumerate_cells(theta, height=height, non_param=non_param))
    assert cells
    for cell in cells:
        assert _height(cell.pairs) == cell.height <= height
        assert sum(op in NON_PARAMETRIC for op, _ in cell.pairs) == non_param
        assert "none" not in {op for op, _ in cell.pairs}
        Genotype(cell.pairs, (2, 3, 4, 5), cell.pairs, (2, 3, 4, 5))  # a valid cell
    best = best_cell(theta, height=height, non_param=non_param)
    assert best.score == max(c.score for c in cells)


def test_best_cell_takes_the_best_op_of_each_kind_per_edge():
    theta = np.full((14, 8), 0.01)
    theta[:, 3] = 0.5  # skip_connect is the best non-parametric op everywhere
    theta[:, 6] = 0.3  # dil_conv_3x3 the best parametric op
    cell = best_cell(theta, height=4, non_param=2)
    assert sorted(op for op, _ in cell.pairs) == ["dil_conv_3x3"] * 6 + ["skip_connect"] * 2
    assert cell.score == pytest.approx(2 * 0.5 + 6 * 0.3)


def test_constrained_genotype_and_errors():
    theta = np.random.default_rng(1).dirichlet(np.ones(8), size=28)
    genotype, score = constrained_genotype(theta, height=2, non_param=3)
    assert isinstance(genotype, Genotype) and score > 0
    both, _ = constrained_genotype(theta, height=2, non_param=3, constrain_reduce=True)
    assert _height(both.reduce) <= 2 and sum(op in NON_PARAMETRIC for op, _ in both.reduce) == 3
    with pytest.raises(GenerationError, match="0..8"):
        constrained_genotype(theta, height=2, non_param=9)
    with pytest.raises(GenerationError, match="height"):
        constrained_genotype(theta, height=0, non_param=2)
