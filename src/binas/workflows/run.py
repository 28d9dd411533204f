"""One command from data to a trained 1-bit network: search, retrain the found cell, evaluate, report.

`run(cfg, run_dir)` is what `binas run` calls. It lays out one run directory:

    RUN_DIR/config.yaml      the resolved config (search options with their defaults filled in)
    RUN_DIR/log.txt          every message of the run (INFO and above)
    RUN_DIR/search/          the search (binas.search): metrics.jsonl, checkpoint.pt, genotype.json, ...
    RUN_DIR/train/           the retraining (binas.train): metrics.jsonl, checkpoints, its summary
    RUN_DIR/genotype.json    the searched genotype (a copy of search/genotype.json)
    RUN_DIR/summary.json     method, archid, top-1/top-5, params, OPs, Mbit, search and train seconds
    RUN_DIR/plots/           curves, architecture heat maps and cell diagrams (binas.plots)

and, under the `binas` command with the optional `tensorboard` package installed, `search/tb/` and
`train/tb/` event files (the CLI installs the TensorBoard sink once, around the whole command).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binas.config.io import dump_yaml
from binas.config.schema import RunConfig
from binas.engine.run_log import run_log
from binas.engine.runtime import Runtime, setup_runtime
from binas.engine.searcher import SearchResult
from binas.errors import BinasError
from binas.genotype import Genotype
from binas.run_files import CONFIG_FILE, GENOTYPE_FILE, SEARCH_DIR, SUMMARY_FILE, TRAIN_DIR
from binas.storage.files import write_json
from binas.storage.lock import run_lock
from binas.strategies import resolve_method_options
from binas.version import __version__
from binas.workflows.search import search
from binas.workflows.train import TrainResult, train

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What `run` returns; everything in it is also in `run_dir` (summary.json)."""

    run_dir: Path
    summary: dict[str, Any]
    search: SearchResult
    train: TrainResult | None
    plots: list[Path]


def run(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    train: bool = True,
    plots: bool = True,
    progress: bool = True,
    runtime: Runtime | None = None,
) -> RunResult:
    """Search with `cfg.search`, retrain the genotype found with `cfg.train`, write the summary and plots.

    Args:
        cfg: the resolved run config.
        run_dir: the run directory (created if missing; it must not hold another run's config.yaml).
        train: retrain and evaluate after the search (False: search only, e.g. for a quick look).
        plots: draw `RUN_DIR/plots/` at the end (a plotting failure is a warning, never a lost run).
        progress: show progress bars.
        runtime: device / seed / process group (default: set up from `cfg`).
    """
    cfg = resolve_method_options(cfg)
    run_dir = Path(run_dir)
    runtime = runtime or setup_runtime(cfg.device, cfg.seed, num_threads=cfg.num_threads)
    main = runtime.is_main
    if main:
        if (run_dir / CONFIG_FILE).exists():  # never mix two runs' files (binas search --resume resumes)
            raise BinasError(f"{run_dir} already holds a run; choose a new --out or leave it out")
        run_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if main:
            stack.enter_context(run_lock(run_dir))
            stack.enter_context(run_log(run_dir))
            dump_yaml(cfg, run_dir / CONFIG_FILE)
        logger.info("binas run: %s on %s, run directory %s", cfg.search.method, cfg.data.name, run_dir)
        found = search(cfg, run_dir / SEARCH_DIR, progress=progress, runtime=runtime)
        if main:
            found.genotype.save(run_dir / GENOTYPE_FILE)
        trained = _retrain(cfg, found.genotype, run_dir / TRAIN_DIR, progress, runtime) if train else None
        summary = build_summary(cfg, run_dir, found, trained)
        drawn: list[Path] = []
        if main:
            write_json(run_dir / SUMMARY_FILE, summary)
            drawn = _draw(run_dir) if plots else []
    return RunResult(run_dir, summary, found, trained, drawn)


def _retrain(cfg: RunConfig, genotype: Genotype, train_dir: Path, progress: bool, runtime: Runtime) -> TrainResult:
    logger.info("retraining %s (%s) in %s", genotype.archid, cfg.search.method, train_dir)
    return train(cfg, genotype, train_dir, progress=progress, runtime=runtime)


def _draw(run_dir: Path) -> list[Path]:
    from binas.plots import draw_run_plots

    try:
        return draw_run_plots(run_dir)
    except Exception as exc:  # noqa: BLE001 - plots are a convenience; the run's results are saved
        logger.warning("could not draw the plots: %s (retry with `binas plot %s`)", exc, run_dir)
        return []


def _train_fields(result: TrainResult | None) -> dict[str, Any]:
    """Accuracy, complexity (of the final network), seconds and epochs of a retraining, flat."""
    if result is None:
        return {}
    epochs = [p.get("epochs") for p in result.phases.values()]
    return {
        **result.profile,
        "top1": result.top1,
        "top5": result.top5,
        "seconds": result.seconds,
        "cpu_seconds": result.summary.get("cpu_seconds"),
        "epochs": sum(epochs) if all(isinstance(e, int) for e in epochs) and epochs else None,
    }


def build_summary(cfg: RunConfig, run_dir: Path, found: SearchResult, trained: TrainResult | None) -> dict[str, Any]:
    """The flat `summary.json` of a run (keys of `binas.workflows.compare.SUMMARY_KEYS` plus details)."""
    t = _train_fields(trained)
    return {
        "method": cfg.search.method,
        "dataset": cfg.data.name,
        "policy": trained.summary.get("policy") if trained is not None else None,
        "archid": found.genotype.archid,
        "top1": t.get("top1"),
        "top5": t.get("top5"),
        "params": t.get("params"),
        "flops": t.get("flops"),
        "bops": t.get("bops"),
        "ops": t.get("ops"),
        "memory_mbit": t.get("memory_mbit"),
        "search_seconds": round(found.seconds, 2),
        "train_seconds": t.get("seconds"),
        "search_cpu_seconds": round(found.cpu_seconds, 2),
        "train_cpu_seconds": t.get("cpu_seconds"),
        "search_epochs": found.epochs,
        "train_epochs": t.get("epochs"),
        "genotype": found.genotype.to_dict(),
        "run_dir": str(run_dir),
        "binas_version": __version__,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
