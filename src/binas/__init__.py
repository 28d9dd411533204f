"""binas: neural architecture search for 1-bit CNNs (DCP-NAS, CP-NAS, DDPNAS and baselines)."""

__version__ = "0.1.0"
