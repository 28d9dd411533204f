"""Networks built from genotypes."""

from binas.nets.network import AuxiliaryHead, EvalCell, Network, drop_path

__all__ = ["AuxiliaryHead", "EvalCell", "Network", "drop_path"]
