"""Architecture parameters, kept outside the supernet so one supernet serves every strategy."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from binas.space.topology import CellTopology

#: alpha is initialised as 1e-3 * N(0, 1) (DARTS `_initialize_alphas`).
ALPHA_INIT_STD = 1e-3


class ArchParameters(nn.Module):
    """alpha_normal, alpha_reduce (E x M) and, for PC-DARTS edge normalisation, beta_normal/beta_reduce (E)."""

    def __init__(
        self,
        topology: CellTopology,
        num_ops: int,
        *,
        edge_normalization: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.topology = topology
        E = topology.num_edges

        def init(*shape: int) -> nn.Parameter:
            return nn.Parameter(ALPHA_INIT_STD * torch.randn(*shape, generator=generator))

        self.alpha_normal = init(E, num_ops)
        self.alpha_reduce = init(E, num_ops)
        self.edge_normalization = edge_normalization
        if edge_normalization:
            self.beta_normal = init(E)
            self.beta_reduce = init(E)

    def alpha(self, kind: str) -> Tensor:
        return self.alpha_normal if kind == "normal" else self.alpha_reduce

    def weights(self, kind: str) -> Tensor:
        """softmax over ops per edge (DARTS Eq. 2)."""
        return torch.softmax(self.alpha(kind), dim=-1)

    def edge_weights(self, kind: str) -> Tensor | None:
        """PC-DARTS edge normalisation: softmax of beta over the edges entering each node, or None."""
        if not self.edge_normalization:
            return None
        beta = self.beta_normal if kind == "normal" else self.beta_reduce
        out = torch.empty_like(beta)
        for node in self.topology.nodes:
            idx = self.topology.node_edges(node)
            out[idx] = torch.softmax(beta[idx], dim=0)
        return out

    def derive_weights(self, kind: str) -> Tensor:
        """The per-edge, per-op scores the DARTS derive rule reads (edge weights folded in for PC-DARTS)."""
        w = self.weights(kind)
        ew = self.edge_weights(kind)
        return (w if ew is None else w * ew[:, None]).detach()

    def forward_kwargs(self) -> dict[str, Tensor | None]:
        """Keyword arguments of `Supernet.forward` for the current (relaxed) architecture."""
        return {
            "normal": self.weights("normal"),
            "reduce": self.weights("reduce"),
            "edge_normal": self.edge_weights("normal"),
            "edge_reduce": self.edge_weights("reduce"),
        }
