"""`search`: run a search method on a config and write its run directory (the library's `binas search`)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from binas.config.io import dump_yaml
from binas.config.schema import RunConfig
from binas.data import dataset_info, load_training_set, split_train_val
from binas.engine.runtime import Runtime, setup_runtime
from binas.engine.searcher import SearchResult, run_search
from binas.engine.strategy import SearchContext, SearchStrategy
from binas.run_files import CHECKPOINT_FILE, CONFIG_FILE
from binas.storage.files import remove_stale_temp_files
from binas.storage.lock import run_lock
from binas.strategies import STRATEGIES, resolve_method_options

logger = logging.getLogger(__name__)


def build_strategy(cfg: RunConfig, runtime: Runtime) -> SearchStrategy:
    """Data split, context and the strategy object for `cfg.search.method` (options resolved once)."""
    cfg = resolve_method_options(cfg)
    data = cfg.data
    train = load_training_set(
        data.name, data_dir=data.data_dir, image_size=data.image_size, max_samples=data.max_train_samples
    )
    train_split, val_split = split_train_val(train, data.train_portion, seed=cfg.seed)
    ctx = SearchContext(train_split, val_split, dataset_info(train), cfg.space, cfg.search, runtime)
    return STRATEGIES.get(cfg.search.method)(ctx, cfg.search.options)


def search(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    runtime: Runtime | None = None,
) -> SearchResult:
    """Run the search `cfg` describes in `run_dir` (config.yaml, metrics.jsonl, checkpoint.pt, genotype.json).

    Args:
        cfg: the run config; `search.options` are checked against the method's options here (once).
        run_dir: the run directory (created if missing).
        resume: continue from `run_dir/checkpoint.pt` (exactly where an uninterrupted run would be).
        progress: show progress bars.
        runtime: device / seed / process group (default: set up from `cfg`).

    Returns:
        The genotype found, epochs, seconds and the last epoch's metrics.
    """
    cfg = resolve_method_options(cfg)
    run_dir = Path(run_dir)
    runtime = runtime or setup_runtime(cfg.device, cfg.seed, num_threads=cfg.num_threads)
    if resume and not (run_dir / CHECKPOINT_FILE).exists():
        logger.warning("%s has no checkpoint yet (stopped in its first epoch): starting it from the beginning", run_dir)
        resume = False
    with run_lock(run_dir) if runtime.is_main else contextlib.nullcontext():
        if runtime.is_main:
            remove_stale_temp_files(run_dir)
            if not resume:
                run_dir.mkdir(parents=True, exist_ok=True)
                dump_yaml(cfg, run_dir / CONFIG_FILE)
        return _search(cfg, run_dir, resume, progress, runtime)


def _search(cfg: RunConfig, run_dir: Path, resume: bool, progress: bool, runtime: Runtime) -> SearchResult:
    strategy = build_strategy(cfg, runtime)
    logger.info(
        "searching with %s on %s (%s, %d CPU thread(s)); run directory %s",
        cfg.search.method,
        cfg.data.name,
        runtime.device,
        runtime.num_threads,
        run_dir,
    )
    return run_search(
        strategy, run_dir, resume=resume, progress=progress, augment=cfg.data.augment, num_workers=cfg.data.num_workers
    )
