"""`run_search`: the one loop that runs any search strategy.

Per epoch it re-seeds every RNG from (seed, epoch), runs the strategy's epoch, appends a metrics line,
and writes an atomic checkpoint. `resume=True` continues from the last completed epoch and, because
each epoch's randomness depends only on (seed, epoch) and the checkpointed state, ends exactly where an
uninterrupted run ends (on CPU, with the same thread count).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from binas.engine.checkpoint import load_checkpoint, save_checkpoint
from binas.engine.loop import EpochLoop
from binas.engine.metrics_log import MetricLogger, truncate_after
from binas.engine.rundir import write_json
from binas.engine.runtime import barrier, derive_seed, seed_everything
from binas.errors import CheckpointError
from binas.genotype import Genotype
from binas.strategies.base import SearchStrategy

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
GENOTYPE_NAME = "genotype.json"


@dataclass
class SearchResult:
    """What a finished search returns (its files are in `run_dir`)."""

    genotype: Genotype
    run_dir: Path
    epochs: int
    seconds: float
    last_metrics: dict[str, Any]
    #: process CPU seconds (all threads): a cost measure that other jobs on the machine barely disturb
    cpu_seconds: float = 0.0


def run_search(
    strategy: SearchStrategy,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    augment: bool | None = None,
    num_workers: int = 0,
    extra_state: dict[str, Any] | None = None,
) -> SearchResult:
    """Run `strategy` to the end of its schedule, writing checkpoints, metrics and the genotype.

    Args:
        strategy: a built strategy (supernets on the runtime's device).
        run_dir: the run directory (created by the caller).
        resume: continue from `run_dir/checkpoint.pt`.
        progress: show tqdm bars.
        augment: random crop + flip for the batches strategies request augmented (None: data set default).
        num_workers: DataLoader workers.
        extra_state: plain data stored in every checkpoint (e.g. the resolved config).
    """
    run_dir = Path(run_dir)
    runtime = strategy.ctx.runtime
    is_main = runtime.is_main
    ckpt_path = run_dir / CHECKPOINT_NAME
    start_epoch, elapsed, elapsed_cpu = 0, 0.0, 0.0
    if resume:
        payload = load_checkpoint(ckpt_path, kind="search")
        if payload.get("method") != strategy.name:
            raise CheckpointError(
                f"{ckpt_path} is a '{payload.get('method')}' search, not '{strategy.name}'"
            )
        strategy.load_state_dict(payload["strategy"])
        start_epoch, elapsed = int(payload["epoch"]) + 1, float(payload["elapsed"])
        elapsed_cpu = float(payload.get("elapsed_cpu", 0.0))
        if is_main:
            truncate_after(run_dir / METRICS_NAME, payload["epoch"])
        logger.info("resuming %s search at epoch %d", strategy.name, start_epoch)
    total = strategy.num_epochs()
    metrics_log = MetricLogger(run_dir / METRICS_NAME, enabled=is_main)
    record: dict[str, Any] = {}
    epoch = start_epoch - 1
    bar = tqdm(range(start_epoch, total), initial=start_epoch, total=total, desc=f"search {strategy.name}",
               disable=not (progress and is_main), dynamic_ncols=True)
    try:
        for epoch in bar:
            if strategy.finished():
                epoch -= 1
                break
            seed_everything(derive_seed(runtime.seed, "search-epoch", epoch))
            loop = EpochLoop(runtime, epoch, strategy.ctx.search.batch_size, augment=augment,
                             progress=progress and is_main, num_workers=num_workers)
            t0, c0 = time.perf_counter(), time.process_time()
            metrics = strategy.run_epoch(epoch, loop)
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
            elapsed += seconds
            elapsed_cpu += cpu_seconds
            record = {"epoch": epoch, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
                      **metrics, **strategy.epoch_record(),
                      "genotype": strategy.genotype().to_dict()}
            metrics_log.log(record)
            bar.set_postfix({k: f"{v:.3g}" for k, v in metrics.items() if isinstance(v, float)}, refresh=False)
            if is_main:
                save_checkpoint(
                    ckpt_path,
                    {"method": strategy.name, "epoch": epoch, "elapsed": elapsed, "elapsed_cpu": elapsed_cpu,
                     "strategy": strategy.state_dict(), **(extra_state or {})},
                    kind="search",
                )
            barrier()
    finally:
        bar.close()
        metrics_log.close()
    genotype = strategy.genotype()
    if is_main:
        genotype.save(run_dir / GENOTYPE_NAME)
        _write_diagrams(genotype, run_dir)
        strategy.write_artifacts(run_dir)
        write_json(run_dir / "search_summary.json", {
            "method": strategy.name, "epochs": epoch + 1, "search_seconds": round(elapsed, 2),
            "search_cpu_seconds": round(elapsed_cpu, 2),
            "genotype": genotype.to_dict(), "archid": genotype.archid, "last": record,
        })
    return SearchResult(genotype, run_dir, epoch + 1, elapsed, record, elapsed_cpu)


def _write_diagrams(genotype: Genotype, run_dir: Path) -> None:
    """Cell diagrams (PNG + DOT) of a DARTS-cell genotype; a plotting failure never loses a finished search."""
    if not isinstance(genotype, Genotype):  # e.g. a mobile-space genotype: blocks, not cells
        return
    try:
        from binas.genotype.plot import save_cell_diagrams

        save_cell_diagrams(genotype, run_dir)
    except Exception as exc:  # noqa: BLE001 - diagrams are a convenience, the genotype is saved
        logger.warning("could not draw cell diagrams: %s", exc)
