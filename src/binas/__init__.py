"""binas: neural architecture search for 1-bit CNNs (DCP-NAS, CP-NAS, DDPNAS and baselines).

The library entry points, the same functions the `binas` commands call::

    import binas
    cfg = binas.load_config("digits_quick", ["search.method=darts"])   # a preset or a YAML file
    found = binas.search(cfg, "runs/s")                                   # -> SearchResult (genotype, ...)
    trained = binas.train(cfg, found.genotype, "runs/t")                  # -> TrainResult (model, top1, ...)
    print(binas.profile(trained.model, (1, 1, 16, 16)))                   # params, FLOPs, BOPs, OPs, Mbit

`binas.run` does search + retraining + report in one run directory; `binas.backbone` builds a feature
extractor for detection / re-ID heads; `binas.deploy(model)` gives the deployment form (integer 1-bit
convs, BatchNorm folded) and `binas.deploy_model(run_dir)` writes the checked deployment files. They are
imported on first use, so `import binas` (and the CLI's start) does not load torch.
"""

from __future__ import annotations

from importlib import import_module

from binas.version import __version__

#: Public name -> (module, attribute), imported lazily.
_EXPORTS = {
    "search": ("binas.workflows.search", "search"),
    "train": ("binas.workflows.train", "train"),
    "run": ("binas.workflows.run", "run"),
    "compare_runs": ("binas.workflows.compare", "compare_runs"),
    "backbone": ("binas.nets.backbone", "backbone"),
    "profile": ("binas.metrics.complexity", "profile_model"),
    "load_config": ("binas.config.preset_files", "load_named_config"),
    "RunConfig": ("binas.config.schema", "RunConfig"),
    "Genotype": ("binas.genotype", "Genotype"),
    "load_model": ("binas.nets.model_file", "load_model"),
    "deploy": ("binas.export.deploy", "deploy"),
    "deploy_model": ("binas.workflows.deploy", "deploy_model"),
    "load_deployed": ("binas.export.packed", "load_deployed"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> object:
    """Import a public name on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'binas' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
