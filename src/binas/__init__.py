"""binas: neural architecture search for 1-bit CNNs (DCP-NAS, CP-NAS, DDPNAS and baselines)."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """Lazy re-exports (`binas.backbone`), so `import binas` and the CLI start without loading torch."""
    if name == "backbone":
        from binas.nets.backbone import backbone

        return backbone
    raise AttributeError(f"module 'binas' has no attribute {name!r}")
