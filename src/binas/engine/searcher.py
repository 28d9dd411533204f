"""`run_search`: the one loop that runs any search strategy.

Per epoch it re-seeds every RNG from (seed, epoch), runs the strategy's epoch, appends a metrics line,
and writes an atomic checkpoint. `resume=True` continues from the last completed epoch and, because
each epoch's randomness depends only on (seed, epoch) and the checkpointed state, ends exactly where an
uninterrupted run ends (on CPU, with the same thread count).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binas.engine.epochs import Clock, EpochPlan, drive_epochs
from binas.engine.loop import EpochLoop
from binas.engine.metrics_log import MetricLogger, truncate_after
from binas.engine.strategy import SearchStrategy
from binas.errors import CheckpointError
from binas.genotype import Genotype
from binas.run_files import CHECKPOINT_FILE, GENOTYPE_FILE, METRICS_FILE, SEARCH_SUMMARY_FILE
from binas.storage.checkpoint import load_checkpoint, save_checkpoint
from binas.storage.files import write_json

logger = logging.getLogger(__name__)


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
    ckpt_path = run_dir / CHECKPOINT_FILE
    start, clock = 0, Clock()
    if resume:
        payload = load_checkpoint(ckpt_path, kind="search")
        if payload.get("method") != strategy.name:
            raise CheckpointError(f"{ckpt_path} is a '{payload.get('method')}' search, not '{strategy.name}'")
        strategy.load_state_dict(payload["strategy"])
        start = int(payload["epoch"]) + 1
        clock = Clock(float(payload["elapsed"]), float(payload.get("elapsed_cpu", 0.0)))
        if runtime.is_main:
            truncate_after(run_dir / METRICS_FILE, payload["epoch"])
        logger.info("resuming %s search at epoch %d", strategy.name, start)

    def run_epoch(epoch: int, loop: EpochLoop) -> dict[str, Any]:
        return {**strategy.run_epoch(epoch, loop), **strategy.epoch_record(), "genotype": strategy.genotype().to_dict()}

    def save(epoch: int, record: dict[str, Any]) -> None:
        save_checkpoint(
            ckpt_path,
            {
                "method": strategy.name,
                "epoch": epoch,
                "elapsed": clock.seconds,
                "elapsed_cpu": clock.cpu_seconds,
                "strategy": strategy.state_dict(),
                **(extra_state or {}),
            },
            kind="search",
        )

    plan = EpochPlan(
        f"search {strategy.name}",
        ("search-epoch",),
        strategy.ctx.search.batch_size,
        augment=augment,
        num_workers=num_workers,
        progress=progress,
    )
    with MetricLogger(run_dir / METRICS_FILE, enabled=runtime.is_main) as metrics_log:
        epochs, record = drive_epochs(
            range(start, strategy.num_epochs()),
            run_epoch,
            runtime,
            plan,
            clock=clock,
            metrics_log=metrics_log,
            save=save,
            stop=strategy.finished,
        )
    genotype = strategy.genotype()
    if runtime.is_main:
        genotype.save(run_dir / GENOTYPE_FILE)
        _write_diagrams(genotype, run_dir)
        strategy.write_artifacts(run_dir)
        write_json(
            run_dir / SEARCH_SUMMARY_FILE,
            {
                "method": strategy.name,
                "epochs": epochs,
                "search_seconds": round(clock.seconds, 2),
                "search_cpu_seconds": round(clock.cpu_seconds, 2),
                "genotype": genotype.to_dict(),
                "archid": genotype.archid,
                "last": record,
            },
        )
    return SearchResult(genotype, run_dir, epochs, clock.seconds, record, clock.cpu_seconds)


def _write_diagrams(genotype: Genotype, run_dir: Path) -> None:
    """Cell diagrams (PNG + DOT) of a DARTS-cell genotype; a plotting failure never loses a finished search."""
    if not isinstance(genotype, Genotype):  # e.g. a mobile-space genotype: blocks, not cells
        return
    try:
        from binas.genotype.plot import save_cell_diagrams

        save_cell_diagrams(genotype, run_dir)
    except Exception as exc:  # noqa: BLE001 - diagrams are a convenience, the genotype is saved
        logger.warning("could not draw cell diagrams: %s", exc)
