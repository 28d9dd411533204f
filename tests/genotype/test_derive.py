"""derive: the DARTS discretization rule on hand-made and random weight matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from binas.errors import GenotypeError
from binas.genotype import derive, derive_cell, get_genotype, list_genotypes
from binas.space.primitives import PRIMITIVES
from binas.space.topology import CellTopology

from .builders import one_hot_weights

TOPO = CellTopology(4)
E, M = TOPO.num_edges, len(PRIMITIVES)
NONE = PRIMITIVES.index("none")


def _op(name: str) -> int:
    return PRIMITIVES.index(name)


def _edge(src: int, dst: int) -> int:
    return TOPO.edges.index((src, dst))


def _softmax_rows(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=-1)


@pytest.mark.parametrize("seed", range(30))
def test_random_softmax_weights_give_valid_cells(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    normal = _softmax_rows(torch.randn(E, M, generator=gen) * 3)
    reduce = _softmax_rows(torch.randn(E, M, generator=gen) * 3)
    normal[:, NONE] = 10.0  # `none` dominating every edge must still never be picked
    genotype = derive(normal, reduce)
    assert genotype.normal_concat == genotype.reduce_concat == (2, 3, 4, 5)
    for kind in ("normal", "reduce"):
        for node, pairs in genotype.node_inputs(kind).items():
            assert len(pairs) == 2
            assert len({src for _, src in pairs}) == 2  # two distinct edges
            assert all(0 <= src < node for _, src in pairs)
            assert all(op != "none" for op, _ in pairs)


def test_matches_numpy_and_torch_inputs() -> None:
    gen = torch.Generator().manual_seed(1)
    w = _softmax_rows(torch.randn(E, M, generator=gen, requires_grad=True))
    assert derive(w, w) == derive(w.detach().numpy(), w.detach().numpy().tolist())


def test_picks_expected_edges_and_ops() -> None:
    w = np.full((E, M), 0.01)
    # node 2: edge (1,2) sep_conv_5x5 0.9 beats edge (0,2) max_pool 0.5 -> strongest first
    w[_edge(0, 2), _op("max_pool_3x3")] = 0.5
    w[_edge(1, 2), _op("sep_conv_5x5")] = 0.9
    # node 3: edge (2,3) dil_conv_3x3 0.7 and (0,3) skip 0.6; (1,3) only strong in `none`
    w[_edge(2, 3), _op("dil_conv_3x3")] = 0.7
    w[_edge(0, 3), _op("skip_connect")] = 0.6
    w[_edge(1, 3), NONE] = 0.99
    # node 4: edges (3,4) and (1,4)
    w[_edge(3, 4), _op("sep_conv_3x3")] = 0.8
    w[_edge(1, 4), _op("avg_pool_3x3")] = 0.4
    # node 5: (4,5) and (0,5)
    w[_edge(4, 5), _op("dil_conv_5x5")] = 0.3
    w[_edge(0, 5), _op("sep_conv_3x3")] = 0.2
    pairs = derive_cell(w)
    assert pairs == (
        ("sep_conv_5x5", 1), ("max_pool_3x3", 0),
        ("dil_conv_3x3", 2), ("skip_connect", 0),
        ("sep_conv_3x3", 3), ("avg_pool_3x3", 1),
        ("dil_conv_5x5", 4), ("sep_conv_3x3", 0),
    )  # fmt: skip


@pytest.mark.parametrize("name", list_genotypes())
def test_one_hot_weights_recover_zoo_genotypes(name: str) -> None:
    g = get_genotype(name)
    derived = derive(one_hot_weights(g.normal), one_hot_weights(g.reduce))
    for kind in ("normal", "reduce"):
        expected = {node: set(pairs) for node, pairs in g.node_inputs(kind).items()}
        assert {node: set(pairs) for node, pairs in derived.node_inputs(kind).items()} == expected


@pytest.mark.parametrize("mask", [0.0, float("-inf")])
def test_masked_ops_are_never_chosen(mask: float) -> None:
    gen = torch.Generator().manual_seed(3)
    w = _softmax_rows(torch.randn(E, M, generator=gen)).numpy()
    pruned = [_op("sep_conv_3x3"), _op("skip_connect"), _op("max_pool_3x3")]
    w[:, pruned] = mask
    chosen = {op for op, _ in derive_cell(w)}
    assert chosen.isdisjoint({"sep_conv_3x3", "skip_connect", "max_pool_3x3", "none"})


def test_ties_go_to_lowest_index() -> None:
    w = np.ones((E, M)) / M
    pairs = derive_cell(w)
    first_op = PRIMITIVES[1]  # index 0 is `none`, excluded
    assert pairs == tuple((first_op, src) for node in TOPO.nodes for src in (0, 1))


def test_edge_with_only_excluded_ops_is_skipped() -> None:
    w = np.zeros((E, M))
    w[:, NONE] = 1.0
    for node in TOPO.nodes:  # only edges from nodes 0 and 1 have a real op, and weakly
        for src in (0, 1):
            w[_edge(src, node), _op("avg_pool_3x3")] = 0.01
    assert {src for _, src in derive_cell(w)} == {0, 1}


def test_unavoidable_excluded_edge_raises() -> None:
    w = np.zeros((E, M))
    w[:, _op("sep_conv_3x3")] = 0.5
    w[_edge(1, 2), :] = 0.0
    w[_edge(1, 2), NONE] = 1.0
    with pytest.raises(GenotypeError, match="node 2 has 1 edge"):
        derive_cell(w, kind="normal")


def test_custom_exclude_and_primitive_order() -> None:
    # DCP-NAS release order (spec §2.2): `none` last.
    dcp_order = PRIMITIVES[1:] + PRIMITIVES[:1]
    w = np.full((E, M), 0.1)
    w[:, dcp_order.index("skip_connect")] = 0.5
    assert {op for op, _ in derive_cell(w, primitives=dcp_order)} == {"skip_connect"}
    excluded = derive_cell(w, primitives=dcp_order, exclude=("none", "skip_connect"))
    assert {op for op, _ in excluded} == {dcp_order[0]}


def test_steps_parameter() -> None:
    topo = CellTopology(2)
    w = np.full((topo.num_edges, M), 0.2)
    g = derive(w, w, steps=2)
    assert g.steps == 2 and g.normal_concat == (2, 3)


@pytest.mark.parametrize(
    ("weights", "kwargs", "message"),
    [
        (np.ones((E - 1, M)), {}, r"shape \(13, 8\)"),
        (np.ones((E, M - 1)), {}, r"expected \(14, 8\)"),
        (np.full((E, M), np.nan), {}, "NaN"),
        (np.random.default_rng(0).normal(size=(E, M)), {}, "non-negative"),
        (np.full((E, M), np.inf), {}, "non-negative"),
        (np.ones((E, M)), {"edges_per_node": 3}, "exactly 2 inputs"),
        ([["a"] * M] * E, {}, "numeric"),
    ],
)
def test_bad_weights(weights: object, kwargs: dict, message: str) -> None:
    with pytest.raises(GenotypeError, match=message):
        derive(weights, np.ones((E, M)), **kwargs)
