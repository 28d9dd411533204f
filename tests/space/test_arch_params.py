"""`ArchParameters` and `CellTopology`: shapes, normalisations, reproducible initialisation."""

from __future__ import annotations

import pytest
import torch

from binas.space.arch_params import ALPHA_INIT_STD, ArchParameters
from binas.space.primitives import PRIMITIVES
from binas.space.topology import CellTopology

TOPOLOGY = CellTopology()


def test_topology_edges_in_darts_order() -> None:
    assert TOPOLOGY.num_edges == 14 and list(TOPOLOGY.nodes) == [2, 3, 4, 5]
    assert TOPOLOGY.edges[:5] == ((0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert [TOPOLOGY.node_edges(n) for n in TOPOLOGY.nodes] == [[0, 1], [2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12, 13]]
    assert CellTopology(steps=3).num_edges == 9


def test_shapes_and_softmax_rows() -> None:
    arch = ArchParameters(TOPOLOGY, len(PRIMITIVES))
    for kind in ("normal", "reduce"):
        assert arch.alpha(kind).shape == (14, 8)
        assert torch.allclose(arch.weights(kind).sum(dim=-1), torch.ones(14))
        assert arch.edge_weights(kind) is None
    assert arch.alpha("normal") is arch.alpha_normal and arch.alpha("reduce") is arch.alpha_reduce
    assert arch.alpha_normal.abs().max() < 10 * ALPHA_INIT_STD


def test_edge_weights_sum_to_one_per_node() -> None:
    arch = ArchParameters(TOPOLOGY, 8, edge_normalization=True, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        arch.beta_normal.copy_(torch.randn(14))
    for kind in ("normal", "reduce"):
        ew = arch.edge_weights(kind)
        assert ew is not None and ew.shape == (14,)
        for node in TOPOLOGY.nodes:
            assert torch.allclose(ew[TOPOLOGY.node_edges(node)].sum(), torch.tensor(1.0))
        dw = arch.derive_weights(kind)
        assert not dw.requires_grad and torch.allclose(dw, arch.weights(kind) * ew[:, None])


def test_forward_kwargs() -> None:
    arch = ArchParameters(TOPOLOGY, 8)
    kw = arch.forward_kwargs()
    assert set(kw) == {"normal", "reduce", "edge_normal", "edge_reduce"}
    assert kw["edge_normal"] is None and kw["normal"].shape == (14, 8)


@pytest.mark.parametrize("edge_normalization", [False, True])
def test_initialisation_is_reproducible_with_a_generator(edge_normalization: bool) -> None:
    def build(seed: int) -> ArchParameters:
        gen = torch.Generator().manual_seed(seed)
        return ArchParameters(TOPOLOGY, 8, edge_normalization=edge_normalization, generator=gen)

    a, b, c = build(7), build(7), build(8)
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q), name
        assert not torch.equal(p, r), name
