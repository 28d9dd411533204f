"""The library entry points behind the CLI: each takes a resolved `RunConfig` and a run directory."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from torch.utils.data import Subset

from binas.config.io import dump_yaml, from_dict, to_dict
from binas.config.schema import RunConfig
from binas.data import ImageDataset, load_dataset, split_train_val
from binas.engine.runtime import Runtime, setup_runtime
from binas.engine.searcher import SearchResult, run_search
from binas.strategies import STRATEGIES
from binas.strategies.base import SearchContext, SearchStrategy

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"


def resolve_search_options(cfg: RunConfig) -> tuple[RunConfig, Any]:
    """Validate `search.options` against the chosen strategy's `Config`; return the config with the
    options' defaults filled in (what gets saved) and the options object."""
    cls = STRATEGIES.get(cfg.search.method)
    options = from_dict(cls.Config, cfg.search.options, where="search.options")
    search = dataclasses.replace(cfg.search, options=to_dict(options))
    return dataclasses.replace(cfg, search=search), options


def load_train_data(cfg: RunConfig) -> ImageDataset | Subset:
    """The training split of `cfg.data`, truncated to `max_train_samples` if set."""
    data = cfg.data
    ds = load_dataset(data.name, "train", data_dir=data.data_dir, image_size=data.image_size)
    if data.max_train_samples is not None and data.max_train_samples < len(ds):
        return Subset(ds, list(range(data.max_train_samples)))
    return ds


def build_strategy(cfg: RunConfig, runtime: Runtime) -> SearchStrategy:
    """Data split, context and the strategy object for `cfg.search.method`."""
    cfg, options = resolve_search_options(cfg)
    train = load_train_data(cfg)
    info = train.info if hasattr(train, "info") else train.dataset.info  # type: ignore[union-attr]
    train_split, val_split = split_train_val(train, cfg.data.train_portion, seed=cfg.seed)
    ctx = SearchContext(train_split, val_split, info, cfg.space, cfg.search, runtime)
    return STRATEGIES.get(cfg.search.method)(ctx, options)


def search(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    runtime: Runtime | None = None,
) -> SearchResult:
    """Run the search `cfg` describes in `run_dir` (config.yaml, metrics.jsonl, checkpoint.pt, genotype.json)."""
    cfg, _ = resolve_search_options(cfg)
    run_dir = Path(run_dir)
    runtime = runtime or setup_runtime(cfg.device, cfg.seed, num_threads=cfg.num_threads)
    if runtime.is_main and not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_yaml(cfg, run_dir / CONFIG_NAME)
    strategy = build_strategy(cfg, runtime)
    logger.info("searching with %s on %s; run directory %s", cfg.search.method, cfg.data.name, run_dir)
    return run_search(strategy, run_dir, resume=resume, progress=progress, augment=cfg.data.augment,
                      num_workers=cfg.data.num_workers)


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The resolved config saved in a run directory."""
    from binas.config.io import load_yaml

    return from_dict(RunConfig, load_yaml(Path(run_dir) / CONFIG_NAME))
