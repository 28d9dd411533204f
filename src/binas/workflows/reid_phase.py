"""One phase of a re-ID run (teacher, step 1, step 2 or one step), on `binas.engine.epochs.drive_epochs`.

An epoch is one pass of P x K batches (`data.reid.IdentityBatchSampler`, a pure function of (seed,
phase, epoch)), the weight steps through `EpochLoop.weight_step` (NaN guard via `EpochLoop.check`), then,
when due, the query / gallery evaluation. `drive_epochs` re-seeds, logs `metrics.jsonl`, shows progress
and calls `save` (the checkpoint) after every epoch, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from binas.config.reid import ReidConfig
from binas.data import random_crop_flip
from binas.data.reid import IdentityBatchSampler, ReidData, ReidSplit
from binas.engine.distributed import convert_batchnorm
from binas.engine.epochs import EpochPlan, drive_epochs, phase_state, resume_phase
from binas.engine.loop import EpochLoop, Meter, accuracy
from binas.engine.metrics_log import RecordLog
from binas.engine.runtime import Runtime, mean_over_ranks, preferred_memory_format
from binas.errors import ConfigError
from binas.metrics.retrieval import RetrievalResult, distance_matrix, evaluate_retrieval
from binas.nets.reid import ReidNet, ReidOutput
from binas.objectives.reid import batch_hard_triplet, id_loss, similarity_distillation
from binas.optim.builders import build_optimizer, cosine_with_warmup, set_lr
from binas.optim.two_step import Phase
from binas.seeds import derive_seed

logger = logging.getLogger(__name__)

#: Crop padding as a fraction of the width (Bag of Tricks: 10 px at 128 px wide).
CROP_PADDING_FRACTION = 10 / 128


@dataclass
class ReidPhaseJob:
    """What one phase needs besides the config: its network, data, teacher and callbacks."""

    phase: Phase
    model: ReidNet
    data: ReidData
    teacher: nn.Module | None
    save: Callable[[int, dict[str, Any], dict[str, Any]], None]  # (epoch, record, state) -> checkpoint
    on_complete: Callable[[ReidNet, dict[str, Any]], None]
    resume: dict[str, Any] | None = None
    final: dict[str, Any] = field(default_factory=dict)


def embed_split(model: ReidNet, split: ReidSplit, batch_size: int, device: torch.device) -> Tensor:
    """The embeddings of every image of `split` (eval mode, no gradients), on the CPU."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            x = split.images(range(start, min(start + batch_size, len(split))))
            out.append(model.embed(x.to(device, memory_format=preferred_memory_format(device))).float().cpu())
    return torch.cat(out)


def evaluate_reid(model: ReidNet, data: ReidData, batch_size: int, device: torch.device) -> RetrievalResult:
    """Rank-1/5/10 and mAP of `model` on the query / gallery splits (cosine distance on the BN-neck
    feature: Bag of Tricks' test setting, `NECK_FEAT: after`, `FEAT_NORM: yes`)."""
    q = embed_split(model, data.query, batch_size, device)
    g = embed_split(model, data.gallery, batch_size, device)
    dist = distance_matrix(q, g, "cosine")
    return evaluate_retrieval(dist, data.query.pids, data.gallery.pids, data.query.camids, data.gallery.camids)


def make_reid_loss(
    cfg: ReidConfig, teacher: nn.Module | None
) -> Callable[[ReidOutput, Tensor, Tensor], tuple[Tensor, dict[str, float]]]:
    """ID cross-entropy on the neck feature's logits + batch-hard triplet on the pooled feature
    (+ similarity distillation from the teacher's features)."""
    lc = cfg.loss

    def loss_fn(out: ReidOutput, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, float]]:
        ce = id_loss(out.logits, y, lc.label_smoothing)
        tri = batch_hard_triplet(out.feature, y, lc.margin)
        loss = lc.id_weight * ce + lc.triplet_weight * tri
        parts = {"train_id_loss": ce.item(), "train_triplet_loss": tri.item()}
        if teacher is not None and lc.kd_weight > 0:
            with torch.no_grad():
                target = teacher(x).feature
            kd = similarity_distillation(out.feature, target)
            loss = loss + lc.kd_weight * kd
            parts["train_kd_loss"] = kd.item()
        return loss, parts

    return loss_fn


def _prepare_ranks(model: ReidNet, runtime: Runtime, ids_per_batch: int) -> None:
    """Under torchrun: BatchNorm over the global batch (as classification retraining does), and enough
    identities per batch for every rank to get some."""
    if not runtime.dist.is_distributed:
        return
    convert_batchnorm(model, runtime.device)
    if ids_per_batch < runtime.dist.world_size:
        raise ConfigError(f"train.ids_per_batch ({ids_per_batch}) must be at least the number of processes")


def run_reid_phase(
    job: ReidPhaseJob,
    cfg: ReidConfig,
    runtime: Runtime,
    *,
    progress: bool,
    metrics_log: RecordLog | None,
) -> dict[str, Any]:
    """Train `job.model` for `job.phase.epochs`; return the phase's result (last record + evaluation)."""
    phase, model, data, device = job.phase, job.model, job.data, runtime.device
    opt, tc = cfg.optim, cfg.train
    optimizer = build_optimizer(
        model, opt.name, lr=opt.peak_lr, weight_decay=phase.weight_decay, betas=opt.betas, momentum=opt.momentum
    )
    start, clock = resume_phase(job.resume, model=model, optimizer=optimizer)
    dist = runtime.dist
    _prepare_ranks(model, runtime, tc.ids_per_batch)
    sampler = IdentityBatchSampler(
        data.train.labels, tc.ids_per_batch, tc.images_per_id, derive_seed(runtime.seed, "reid", phase.name)
    )
    params = [p for p in model.parameters() if p.requires_grad]
    loss_fn = make_reid_loss(cfg, job.teacher)
    augment = data.info.augment_by_default if cfg.data.augment is None else cfg.data.augment
    padding = max(1, round(data.info.width * CROP_PADDING_FRACTION))
    memory_format = preferred_memory_format(device)
    warmup = min(opt.warmup_epochs, phase.epochs)

    def run_epoch(epoch: int, loop: EpochLoop) -> dict[str, Any]:
        model.train()
        meter, lr = Meter(), 0.0
        batches = sampler.batches(epoch)
        gen = torch.Generator().manual_seed(derive_seed(runtime.seed, "reid-augment", phase.name, epoch))
        desc = f"{phase.name} {epoch + 1}/{phase.epochs}"
        for i, indices in enumerate(tqdm(batches, desc=desc, leave=False, disable=not loop.progress)):
            x, y, _ = data.train.batch(sampler.shard(indices, dist.rank, dist.world_size))
            if augment:
                x = random_crop_flip(x, gen, padding=padding, flip=data.info.hflip)
            x, y = x.to(device, memory_format=memory_format), y.to(device)
            lr = cosine_with_warmup(opt.peak_lr, opt.min_lr, epoch + (i + 1) / len(batches), phase.epochs, warmup)
            set_lr(optimizer, lr)
            out = model(x)
            loss, parts = loss_fn(out, x, y)
            loop.check(loss, f"{phase.name} loss")
            loop.weight_step(loss, optimizer, params, opt.grad_clip)
            meter.update(len(y), train_loss=loss.item(), train_acc=accuracy(out.logits.detach(), y)[0], **parts)
        # every rank saw its shard: the record holds the mean over ranks
        record: dict[str, Any] = {"phase": phase.name, "lr": lr, **mean_over_ranks(meter.means())}
        last = epoch == phase.epochs - 1
        if last or (tc.eval_every and (epoch + 1) % tc.eval_every == 0):
            result = evaluate_reid(model, data, tc.eval_batch_size, device)
            record.update({f"test_{k}": v for k, v in result.to_dict().items() if k != "num_queries"})
            if last:
                job.final.update(result.to_dict())
        return record

    def on_epoch_end(epoch: int, record: dict[str, Any]) -> None:
        if "test_rank1" in record:
            logger.info(
                "%s: epoch %d: rank-1 %.4f, mAP %.4f", phase.name, epoch + 1, record["test_rank1"], record["test_mAP"]
            )
        if epoch == phase.epochs - 1:
            job.final.update(
                epochs=phase.epochs,
                seconds=round(clock.seconds, 2),
                cpu_seconds=round(clock.cpu_seconds, 2),
                **{k: v for k, v in record.items() if k.startswith("train_")},
            )
            job.on_complete(model, dict(job.final))

    def save(epoch: int, record: dict[str, Any]) -> None:
        state = phase_state(phase.name, epoch, clock, record, model=model, optimizer=optimizer)
        job.save(epoch, record, state)

    plan = EpochPlan(phase.name, ("reid-epoch", phase.name), tc.batch_size, progress=progress)
    drive_epochs(
        range(start, phase.epochs),
        run_epoch,
        runtime,
        plan,
        clock=clock,
        metrics_log=metrics_log,
        save=save,
        on_epoch_end=on_epoch_end,
    )
    return dict(job.final)
