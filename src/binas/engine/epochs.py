"""`drive_epochs`: the one epoch loop under every search and every training phase.

Per epoch it re-seeds every RNG from (seed, keys, epoch), hands the epoch an `EpochLoop`, times it in wall
and process-CPU seconds, appends the record to `metrics.jsonl`, shows it on the progress bar (or, when
the bar is hidden, logs one line per epoch so a run with its output in a file is never silent), lets the
caller write its checkpoint (rank 0) and waits for every rank. What an epoch *is* stays with the caller:
a search strategy's `run_epoch` or a training phase's pass over the data.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from binas.engine.loop import EpochLoop
from binas.engine.metrics_log import RecordLog
from binas.engine.runtime import Runtime, barrier, seed_everything
from binas.seeds import derive_seed

logger = logging.getLogger(__name__)

#: Record fields shown on the progress bar / the per-epoch log line when present.
SHOWN_KEYS = ("train_loss", "train_acc", "val_acc", "child_val_acc", "parent_val_acc", "test_top1")


@dataclass
class Clock:
    """Seconds spent in completed epochs (restored from a checkpoint on resume)."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0


@dataclass
class EpochPlan:
    """How to run the epochs of one search or training phase.

    Attributes:
        desc: progress-bar label (e.g. `search dcp-nas`, `step1`).
        seed_keys: per-epoch seed = `derive_seed(runtime.seed, *seed_keys, epoch)`; distinct per phase.
        batch_size: global batch of the `EpochLoop` (split over torchrun ranks).
        loop_runtime: the runtime batches are drawn with (default: `runtime`); a phase passes one with
            its own seed so its data order differs from other phases'.
    """

    desc: str
    seed_keys: tuple[str, ...]
    batch_size: int
    augment: bool | None = None
    num_workers: int = 0
    progress: bool = True
    loop_runtime: Runtime | None = None


def phase_state(phase: str, epoch: int, clock: Clock, record: dict[str, Any], **parts: Any) -> dict[str, Any]:
    """A training phase's checkpoint after `epoch`: position, elapsed seconds, the epoch's record and the
    state dict of each part (`model=...`, `optimizer=...`); `resume_phase` reads it back."""
    return {
        "phase": phase,
        "epoch": epoch,
        "elapsed": clock.seconds,
        "elapsed_cpu": clock.cpu_seconds,
        "record": record,
        **{name: part.state_dict() for name, part in parts.items()},
    }


def resume_phase(state: dict[str, Any] | None, **parts: Any) -> tuple[int, Clock]:
    """Load each part's state dict from a `phase_state` checkpoint; (first epoch to run, restored clock).
    No checkpoint: (0, a new clock). A part whose state the checkpoint lacks or holds empty is left as is."""
    if state is None:
        return 0, Clock()
    for name, part in parts.items():
        if state.get(name):
            part.load_state_dict(state[name])
    return int(state["epoch"]) + 1, Clock(float(state["elapsed"]), float(state.get("elapsed_cpu", 0.0)))


def drive_epochs(
    epochs: range,
    run_epoch: Callable[[int, EpochLoop], dict[str, Any]],
    runtime: Runtime,
    plan: EpochPlan,
    *,
    clock: Clock,
    metrics_log: RecordLog | None = None,
    save: Callable[[int, dict[str, Any]], None] | None = None,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run `run_epoch(epoch, loop)` for each epoch of `epochs` (a resumed run starts past 0).

    Args:
        epochs: the epochs still to run; `epochs.stop` is the schedule's length (the bar's total).
        run_epoch: one epoch; returns its metrics (the record also gets `epoch`, `seconds`, `cpu_seconds`).
        runtime: device, seed and process group; only rank 0 logs, shows progress and saves.
        plan: label, seeding and batching of the epochs.
        clock: elapsed seconds, advanced after every epoch (pass the restored one on resume).
        metrics_log: where records go (`metrics.jsonl`).
        save: writes the checkpoint after an epoch's record is logged (rank 0 only).
        on_epoch_end: called on every rank after the record, before `save` (e.g. to write a model file).
        stop: checked before each epoch; True ends the loop early (a schedule that finished by itself).

    Returns:
        (epochs completed in total, the last epoch's record; empty if no epoch ran).
    """
    is_main = runtime.is_main
    show_bar = plan.progress and is_main
    bar = tqdm(
        epochs, initial=epochs.start, total=epochs.stop, desc=plan.desc, disable=not show_bar, dynamic_ncols=True
    )
    # The bar draws on a terminal only; elsewhere (a log file, CI) one INFO line per epoch says where the run is.
    line_per_epoch = is_main and not (show_bar and sys.stderr.isatty())
    done, record = epochs.start, {}
    try:
        for epoch in bar:
            if stop is not None and stop():
                break
            seed_everything(derive_seed(runtime.seed, *plan.seed_keys, epoch), deterministic=runtime.deterministic)
            loop = EpochLoop(
                plan.loop_runtime or runtime,
                epoch,
                plan.batch_size,
                augment=plan.augment,
                progress=show_bar,
                num_workers=plan.num_workers,
            )
            t0, c0 = time.perf_counter(), time.process_time()
            metrics = run_epoch(epoch, loop)
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
            clock.seconds += seconds
            clock.cpu_seconds += cpu_seconds
            record = {"epoch": epoch, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3), **metrics}
            if metrics_log is not None:
                metrics_log.log(record)
            shown = {k: record[k] for k in SHOWN_KEYS if isinstance(record.get(k), float)}
            bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)
            if line_per_epoch:
                logger.info(
                    "%s: epoch %d/%d (%.1f s)%s",
                    plan.desc,
                    epoch + 1,
                    epochs.stop,
                    seconds,
                    "".join(f", {k} {v:.4g}" for k, v in shown.items()),
                )
            if on_epoch_end is not None:
                on_epoch_end(epoch, record)
            if is_main and save is not None:
                save(epoch, record)
            barrier()
            done = epoch + 1
    finally:
        bar.close()
    return done, record
