"""`run_phase`: the loop that trains one network for one phase (teacher, step 1, step 2, ...).

A phase's epoch is one pass over the training data, then the test evaluation; `binas.engine.epochs`
drives the epochs (re-seeding from (seed, phase, epoch), metrics line, atomic checkpoint), so a run killed
mid-epoch and resumed ends with the weights of an uninterrupted run (CPU, same thread count), as a search
does (`binas.engine.searcher`).

Under torchrun the network is wrapped in `DistributedDataParallel` and each rank trains on
`batch_size / world_size` samples of the global batch. BatchNorm normalises over the *global* batch
(`nn.SyncBatchNorm` on CUDA, `GlobalBatchNorm` on CPU/Gloo, where `SyncBatchNorm` does not run), so N
processes compute what one process computes on the same global batch, up to float rounding.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from binas.engine.distributed import convert_batchnorm
from binas.engine.epochs import Clock, EpochPlan, drive_epochs, phase_state, resume_phase
from binas.engine.evaluator import EvalResult, evaluate
from binas.engine.loop import EpochLoop, Meter, accuracy
from binas.engine.metrics_log import RecordLog
from binas.engine.runtime import Runtime, all_reduce_mean
from binas.errors import ConfigError
from binas.nets.model_file import BuiltNetwork
from binas.optim.builders import set_lr
from binas.run_files import CHECKPOINT_FILE
from binas.seeds import derive_seed
from binas.storage.checkpoint import save_checkpoint

logger = logging.getLogger(__name__)

TRAIN_KIND = "train"  # a training checkpoint: `checkpoint.pt` of a run

#: (logits, auxiliary logits or None, last cell's features): what `Network.forward_all` returns.
Outputs = tuple[Tensor, "Tensor | None", Tensor]
#: loss_fn(outputs, x, y) -> (loss, named scalar parts for the metrics log).
LossFn = Callable[[Outputs, Tensor, Tensor], tuple[Tensor, dict[str, float]]]


class _ForwardAll(nn.Module):
    """`net.forward_all` as `forward`, so DDP sees (and synchronises) the full forward pass."""

    def __init__(self, net: BuiltNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Outputs:
        out = self.net.forward_all(x)
        return out.logits, out.aux_logits, out.features


@dataclass
class PhaseResult:
    """What a finished phase reports: its last epoch record and final test evaluation."""

    name: str
    epochs: int
    seconds: float
    final: EvalResult | None
    last: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {
            "epochs": self.epochs,
            "seconds": round(self.seconds, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),
            **{k: v for k, v in self.last.items() if k.startswith("train_")},
        }
        if self.final is not None:
            out.update(top1=self.final.top1, top5=self.final.top5, loss=self.final.loss)
        return out


@dataclass
class TrainJob:
    """One phase: a network, its data, optimizer, schedule and loss.

    Attributes:
        name: phase name (seeds, metrics and checkpoints are keyed by it).
        model: the network (`binas.nets.Network` or a reference network) on the runtime's device.
        make_optimizer: builds the phase's optimizer from the model.
        lr: learning rate at a fractional epoch (a pure function: resuming needs no scheduler state).
        batch_size: global batch, split evenly over ranks.
        on_complete: called (all ranks) with the model and the phase's result after the last epoch, before
            that epoch's checkpoint is written.
    """

    name: str
    model: BuiltNetwork
    train_data: Dataset
    test_data: Dataset | None
    epochs: int
    batch_size: int
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    lr: Callable[[float], float]
    loss_fn: LossFn
    grad_clip: float | None = None
    drop_path_prob: float = 0.0
    amp: bool = False
    eval_every: int = 1
    eval_batch_size: int | None = None
    augment: bool | None = None
    shuffle: bool = True
    num_workers: int = 0
    on_complete: Callable[[nn.Module, PhaseResult], None] | None = None


def _amp_setup(job: TrainJob, device: torch.device) -> tuple[Any, torch.amp.GradScaler]:
    """(autocast context factory, grad scaler): bf16 autocast where supported, fp16 + scaler otherwise."""
    if not (job.amp and device.type == "cuda"):
        return contextlib.nullcontext, torch.amp.GradScaler(device.type, enabled=False)
    bf16 = torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float16
    return (lambda: torch.autocast("cuda", dtype=dtype)), torch.amp.GradScaler("cuda", enabled=not bf16)


def _may_leave_parameters_unused(net: nn.Module) -> bool:
    """A cell whose genotype never reads one of its two inputs leaves that input's preprocessing without
    gradients, which DDP must be told about (it costs a graph traversal per step otherwise not needed)."""
    return any(not {0, 1} <= set(getattr(c, "indices", (0, 1))) for c in getattr(net, "cells", ()))


def _steps_per_epoch(n: int, per_rank_batch: int, world_size: int) -> int:
    return math.ceil(math.ceil(n / world_size) / per_rank_batch)


def run_phase(
    job: TrainJob,
    runtime: Runtime,
    run_dir: str | Path,
    *,
    resume: dict[str, Any] | None = None,
    progress: bool = True,
    metrics_log: RecordLog | None = None,
    extra_state: Callable[[], dict[str, Any]] | None = None,
) -> PhaseResult:
    """Train `job.model` for `job.epochs`, checkpointing every epoch to `run_dir/checkpoint.pt`.

    `resume` is a checkpoint payload of this phase (continue after its epoch). `extra_state()` adds plain
    data to every checkpoint (the run's config, finished phases). Only rank 0 writes files.
    """
    world, device = runtime.dist.world_size, runtime.device
    if job.batch_size % world:
        raise ConfigError(f"train.batch_size={job.batch_size} must be divisible by the {world} torchrun processes")
    net = job.model
    forward = _forward_on_ranks(net, runtime)
    optimizer = job.make_optimizer(net)
    autocast, scaler = _amp_setup(job, device)
    start, clock = _restore(resume, net, optimizer, scaler)
    dtype = next(net.parameters()).dtype
    steps = _steps_per_epoch(len(job.train_data), job.batch_size // world, world)  # type: ignore[arg-type]
    final: list[EvalResult | None] = [None]  # the last epoch's test evaluation

    def run_epoch(epoch: int, loop: EpochLoop) -> dict[str, Any]:
        net.drop_path_prob = job.drop_path_prob * epoch / job.epochs  # DARTS's linear ramp
        meter, lr = Meter(), 0.0
        forward.train()
        for i, (x, y) in enumerate(
            loop.batches(
                job.train_data,
                stream="train",
                shuffle=job.shuffle,
                augment=True,
                desc=f"{job.name} {epoch + 1}/{job.epochs}",
            )
        ):
            lr = job.lr(epoch + (i + 1) / steps)
            set_lr(optimizer, lr)
            x = x.to(dtype=dtype)
            with autocast():
                out = forward(x)
                loss, parts = job.loss_fn(out, x, y)
            loop.check(loss, f"{job.name} loss")
            _scaled_step(loss, optimizer, scaler, net, job.grad_clip)
            meter.update(len(y), train_loss=loss.item(), train_acc=accuracy(out[0].detach(), y)[0], **parts)
        record = {"phase": job.name, "lr": lr, **_mean_over_ranks(meter.means(), runtime)}
        last = epoch == job.epochs - 1
        if job.test_data is not None and (last or (job.eval_every and (epoch + 1) % job.eval_every == 0)):
            result = evaluate(
                net,
                job.test_data,
                batch_size=job.eval_batch_size or job.batch_size,
                device=device,
                rank=runtime.dist.rank,
                world_size=world,
                num_workers=job.num_workers,
            )
            record.update(test_top1=result.top1, test_top5=result.top5, test_loss=result.loss)
            final[0] = result if last else final[0]
        return record

    def on_epoch_end(epoch: int, record: dict[str, Any]) -> None:
        if epoch == job.epochs - 1 and job.on_complete is not None:
            job.on_complete(net, PhaseResult(job.name, job.epochs, clock.seconds, final[0], record, clock.cpu_seconds))

    def save(epoch: int, record: dict[str, Any]) -> None:
        state = phase_state(job.name, epoch, clock, record, model=net, optimizer=optimizer, scaler=scaler)
        save_checkpoint(
            Path(run_dir) / CHECKPOINT_FILE, {**state, **(extra_state() if extra_state else {})}, kind=TRAIN_KIND
        )

    plan = EpochPlan(
        job.name,
        ("train-epoch", job.name),
        job.batch_size,
        augment=job.augment,
        num_workers=job.num_workers,
        progress=progress,
        loop_runtime=dataclasses.replace(runtime, seed=derive_seed(runtime.seed, "train", job.name)),
    )
    _, record = drive_epochs(
        range(start, job.epochs),
        run_epoch,
        runtime,
        plan,
        clock=clock,
        metrics_log=metrics_log,
        save=save,
        on_epoch_end=on_epoch_end,
    )
    return PhaseResult(job.name, job.epochs, clock.seconds, final[0], record, clock.cpu_seconds)


def _forward_on_ranks(net: BuiltNetwork, runtime: Runtime) -> nn.Module:
    """`net.forward_all` as a module; under torchrun with global-batch BatchNorm, wrapped in DDP."""
    forward: nn.Module = _ForwardAll(net)
    if not runtime.dist.is_distributed:
        return forward
    device = runtime.device
    convert_batchnorm(net, device)
    return DistributedDataParallel(
        forward,
        device_ids=[device] if device.type == "cuda" else None,
        find_unused_parameters=_may_leave_parameters_unused(net),
    )


def _restore(
    resume: dict[str, Any] | None, net: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler
) -> tuple[int, Clock]:
    """(first epoch to run, elapsed time) of a phase, after loading a checkpoint payload into it if given."""
    return resume_phase(resume, model=net, optimizer=optimizer, scaler=scaler)


def _scaled_step(
    loss: Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    net: nn.Module,
    grad_clip: float | None,
) -> None:
    """A weight step through the AMP grad scaler (a no-op scaler without AMP); DDP averages the gradients
    in `backward`. The unscale before clipping makes the clip act on the true gradients."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


def _mean_over_ranks(means: dict[str, float], runtime: Runtime) -> dict[str, float]:
    """Every rank saw an equal share of the epoch: the mean of the ranks' means is the epoch's mean."""
    if not runtime.dist.is_distributed:
        return means
    keys = sorted(means)
    return dict(zip(keys, all_reduce_mean(torch.tensor([means[k] for k in keys])).tolist()))
