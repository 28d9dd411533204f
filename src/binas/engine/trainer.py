"""`run_phase`: the loop that trains one network for one phase (teacher, step 1, step 2, ...).

Per epoch it re-seeds every RNG from (seed, phase, epoch), trains on batches from `EpochLoop`, evaluates,
appends a metrics line and writes an atomic checkpoint, so a run killed mid-epoch and resumed ends with
the weights of an uninterrupted run (CPU, same thread count), like `binas.engine.searcher`.

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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from tqdm import tqdm

from binas.engine.checkpoint import save_checkpoint
from binas.engine.evaluator import TRAIN_KIND, EvalResult, evaluate
from binas.engine.loop import EpochLoop, Meter, accuracy
from binas.engine.metrics_log import MetricLogger
from binas.engine.runtime import Runtime, all_reduce_mean, barrier, derive_seed, seed_everything
from binas.errors import ConfigError
from binas.optim.builders import set_lr

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
#: (logits, auxiliary logits or None, last cell's features): what `Network.forward_all` returns.
Outputs = tuple[Tensor, "Tensor | None", Tensor]
#: loss_fn(outputs, x, y) -> (loss, named scalar parts for the metrics log).
LossFn = Callable[[Outputs, Tensor, Tensor], tuple[Tensor, dict[str, float]]]


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward sums the gradients over ranks (each rank's loss depends on every rank's
    partial sums), so gradients stay exact under cross-rank statistics."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        out = grad.clone()
        dist.all_reduce(out)
        return out


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the batches of all ranks (differentiable all-reduce).

    Mean and variance are two-pass sums all-reduced over the process group; the all-reduce's backward
    sums the gradients, so with DDP's gradient averaging the result is the gradient of the global-batch
    loss. Outside a process group, or in eval mode, it is plain BatchNorm.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-d input, got {x.dim()}-d")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.full((1,), x.numel() / x.shape[1], dtype=x.dtype, device=x.device)
        sums = _AllReduceSum.apply(torch.cat([x.sum(dims), count]))
        n, mean = sums[-1], sums[:-1] / sums[-1]
        centered = x - mean.view(shape)
        var = _AllReduceSum.apply(centered.pow(2).sum(dims)) / n
        y = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[operator]
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_((var * n / (n - 1)).detach(), alpha=m)
        return y


def convert_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Make every BatchNorm of `model` normalise over the global batch (in place; parameters are shared)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
            child, (GlobalBatchNorm, nn.SyncBatchNorm)
        ):
            new = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                  child.track_running_stats)
            new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(model, name, new)
        else:
            convert_batchnorm(child, device)
    return model


class _ForwardAll(nn.Module):
    """`net.forward_all` as `forward`, so DDP sees (and synchronises) the full forward pass."""

    def __init__(self, net: nn.Module) -> None:
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
        out = {"epochs": self.epochs, "seconds": round(self.seconds, 2), "cpu_seconds": round(self.cpu_seconds, 2), **{
            k: v for k, v in self.last.items() if k.startswith("train_")}}
        if self.final is not None:
            out.update(top1=self.final.top1, top5=self.final.top5, loss=self.final.loss)
        return out


@dataclass
class TrainJob:
    """One phase: a network, its data, optimizer, schedule and loss.

    Attributes:
        name: phase name (seeds, metrics and checkpoints are keyed by it).
        model: the network (`binas.nets.Network`) on the runtime's device.
        make_optimizer: builds the phase's optimizer from the model.
        lr: learning rate at a fractional epoch (a pure function: resuming needs no scheduler state).
        batch_size: global batch, split evenly over ranks.
        on_complete: called (all ranks) with the model and the phase's result after the last epoch, before
            that epoch's checkpoint is written.
    """

    name: str
    model: nn.Module
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
    metrics_log: MetricLogger | None = None,
    extra_state: Callable[[], dict[str, Any]] | None = None,
) -> PhaseResult:
    """Train `job.model` for `job.epochs`, checkpointing every epoch to `run_dir/checkpoint.pt`.

    `resume` is a checkpoint payload of this phase (continue after its epoch). `extra_state()` adds plain
    data to every checkpoint (the run's config, finished phases). Only rank 0 writes files.
    """
    world, device, is_main = runtime.dist.world_size, runtime.device, runtime.is_main
    if job.batch_size % world:
        raise ConfigError(f"train.batch_size={job.batch_size} must be divisible by the {world} torchrun processes")
    net = job.model
    if runtime.dist.is_distributed:
        convert_batchnorm(net, device)
    forward: nn.Module = _ForwardAll(net)
    if runtime.dist.is_distributed:
        forward = DistributedDataParallel(forward, device_ids=[device] if device.type == "cuda" else None,
                                          find_unused_parameters=_may_leave_parameters_unused(net))
    optimizer = job.make_optimizer(net)
    autocast, scaler = _amp_setup(job, device)
    start, elapsed, elapsed_cpu = 0, 0.0, 0.0
    if resume is not None:
        net.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        if resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        start, elapsed = int(resume["epoch"]) + 1, float(resume["elapsed"])
        elapsed_cpu = float(resume.get("elapsed_cpu", 0.0))
    dtype = next(net.parameters()).dtype
    per_rank = job.batch_size // world
    steps = _steps_per_epoch(len(job.train_data), per_rank, world)  # type: ignore[arg-type]
    phase_runtime = dataclasses.replace(runtime, seed=derive_seed(runtime.seed, "train", job.name))
    bar = tqdm(range(start, job.epochs), initial=start, total=job.epochs, desc=job.name,
               disable=not (progress and is_main), dynamic_ncols=True)
    record: dict[str, Any] = {}
    final: EvalResult | None = None
    for epoch in bar:
        seed_everything(derive_seed(runtime.seed, "train-epoch", job.name, epoch), deterministic=runtime.deterministic)
        net.drop_path_prob = job.drop_path_prob * epoch / job.epochs  # DARTS's linear ramp
        loop = EpochLoop(phase_runtime, epoch, job.batch_size, augment=job.augment,  # global; it splits per rank
                         progress=progress and is_main,
                         num_workers=job.num_workers)
        t0, c0 = time.perf_counter(), time.process_time()
        meter = Meter()
        forward.train()
        lr = 0.0
        batches = loop.batches(job.train_data, stream="train", shuffle=job.shuffle, augment=True,
                               desc=f"{job.name} {epoch + 1}/{job.epochs}")
        for i, (x, y) in enumerate(batches):
            lr = job.lr(epoch + (i + 1) / steps)
            set_lr(optimizer, lr)
            x = x.to(dtype=dtype)
            with autocast():
                out = forward(x)
                loss, parts = job.loss_fn(out, x, y)
            loop.check(loss, f"{job.name} loss")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if job.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(net.parameters(), job.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            meter.update(len(y), train_loss=loss.item(), train_acc=accuracy(out[0].detach(), y)[0], **parts)
        train = meter.means()
        if runtime.dist.is_distributed:  # every rank saw an equal share: the mean of means is the mean
            keys = sorted(train)
            train = dict(zip(keys, all_reduce_mean(torch.tensor([train[k] for k in keys])).tolist()))
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        elapsed += seconds
        elapsed_cpu += cpu_seconds
        last = epoch == job.epochs - 1
        record = {"phase": job.name, "epoch": epoch, "lr": lr, "seconds": round(seconds, 3),
                  "cpu_seconds": round(cpu_seconds, 3), **train}
        if job.test_data is not None and (last or (job.eval_every and (epoch + 1) % job.eval_every == 0)):
            result = evaluate(net, job.test_data, batch_size=job.eval_batch_size or job.batch_size, device=device,
                              rank=runtime.dist.rank, world_size=world, num_workers=job.num_workers)
            record.update(test_top1=result.top1, test_top5=result.top5, test_loss=result.loss)
            final = result if last else final
        if metrics_log is not None:
            metrics_log.log(record)
        bar.set_postfix({k: f"{v:.3g}" for k, v in record.items() if k in ("train_loss", "train_acc", "test_top1")},
                        refresh=False)
        if last and job.on_complete is not None:
            job.on_complete(net, PhaseResult(job.name, job.epochs, elapsed, final, record, elapsed_cpu))
        if is_main:
            state = {"phase": job.name, "epoch": epoch, "elapsed": elapsed, "elapsed_cpu": elapsed_cpu,
                     "model": net.state_dict(),
                     "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "record": record}
            save_checkpoint(Path(run_dir) / CHECKPOINT_NAME, {**state, **(extra_state() if extra_state else {})},
                            kind=TRAIN_KIND)
        barrier()
    bar.close()
    return PhaseResult(job.name, job.epochs, elapsed, final, record, elapsed_cpu)
