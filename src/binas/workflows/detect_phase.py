"""One phase of detector training (real, step 1, step 2 or the real twin) on `engine.epochs.drive_epochs`.

An epoch is one pass over the training images in an order fixed by (seed, phase, epoch), each batch
flipped at random where the data set allows it, then (at the end of a step, or every `eval_every` epochs)
the test mAP. The engine re-seeds, logs `metrics.jsonl`, shows progress and writes the checkpoint every
epoch, so a killed run resumes from its last epoch. Under torchrun each rank trains on its shard of the
global batch, gradients are averaged in `EpochLoop.weight_step` and BatchNorm uses the global batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from binas.config.detect import DetectConfig
from binas.data.detection import DetectionDataset, collate_detection, hflip_batch
from binas.engine.distributed import convert_batchnorm
from binas.engine.epochs import Clock, EpochPlan, drive_epochs, phase_state, resume_phase
from binas.engine.loop import EpochLoop, Meter
from binas.engine.metrics_log import RecordLog
from binas.engine.runtime import Runtime, mean_over_ranks, preferred_memory_format
from binas.metrics.detection import coco_map
from binas.nets.centernet import decode, detection_loss
from binas.nets.detector import Detector
from binas.objectives.detection import head_distill_loss
from binas.optim.builders import build_optimizer, cosine_with_warmup, set_lr
from binas.quant.policy import BinarizationPolicy
from binas.run_files import CHECKPOINT_FILE
from binas.seeds import derive_seed
from binas.storage.checkpoint import save_checkpoint

logger = logging.getLogger(__name__)

DETECT_KIND = "detect"  # the checkpoint kind of a detection run's `checkpoint.pt`


@dataclass(frozen=True)
class DetectPhase:
    """One phase: its name, the backbone's policy, length, weight decay, and which phase initialises it."""

    name: str
    policy: BinarizationPolicy
    epochs: int
    weight_decay: float
    init_from: str | None = None


def detection_loader(
    dataset: DetectionDataset, batch_size: int, runtime: Runtime, *, shuffle: bool, seed: int, epoch: int
) -> DataLoader:
    """Batches `(images, targets)` of `dataset` in an order fixed by (seed, epoch); a rank's shard under torchrun."""
    dist = runtime.dist
    sampler: Any
    if dist.is_distributed:
        sampler = DistributedSampler(dataset, dist.world_size, dist.rank, shuffle=shuffle, seed=seed)
        sampler.set_epoch(epoch)
    elif shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(derive_seed(seed, epoch)))
    else:
        sampler = SequentialSampler(dataset)
    per_rank = max(1, batch_size // dist.world_size)
    return DataLoader(dataset, per_rank, sampler=sampler, collate_fn=collate_detection)


def to_device(targets: list[dict[str, Tensor]], device: torch.device) -> list[dict[str, Tensor]]:
    return [{k: v.to(device) for k, v in t.items()} for t in targets]


@torch.no_grad()
def predict(model: Detector, dataset: DetectionDataset, cfg: DetectConfig, device: torch.device) -> tuple[list, list]:
    """(predictions, ground truth) of every image of `dataset`, on the CPU, in order."""
    was_training = model.training
    model.eval()
    preds: list[dict[str, Tensor]] = []
    truths: list[dict[str, Tensor]] = []
    size = dataset.info.image_size
    fmt = preferred_memory_format(device)
    for x, targets in DataLoader(dataset, cfg.train.batch_size, collate_fn=collate_detection):
        out = model(x.to(device, memory_format=fmt))
        found = decode(out, model.stride, size, top_k=cfg.train.top_k, score_threshold=cfg.train.score_threshold)
        preds += [{k: v.cpu() for k, v in p.items()} for p in found]
        truths += targets
    model.train(was_training)
    return preds, truths


def evaluate_map(
    model: Detector, dataset: DetectionDataset, cfg: DetectConfig, device: torch.device
) -> dict[str, float]:
    preds, truths = predict(model, dataset, cfg, device)
    return coco_map(preds, truths, dataset.info.num_classes)


def _loss(
    model: Detector, teacher: Detector | None, x: Tensor, targets: list[dict[str, Tensor]], cfg: DetectConfig
) -> tuple[Tensor, dict[str, float]]:
    """The detection loss of one batch, plus `distill.weight` x the distillation term when a teacher is given."""
    out = model(x)
    loss, parts = detection_loss(out, targets, model.stride, giou_weight=cfg.train.giou_weight)
    if teacher is not None and cfg.distill.weight > 0:
        with torch.no_grad():
            taught = teacher(x)
        kd = head_distill_loss(out, taught)
        loss = loss + cfg.distill.weight * kd
        parts["train_distill"] = float(kd.detach())
    return loss, parts


def run_detect_phase(
    phase: DetectPhase,
    model: Detector,
    data: tuple[DetectionDataset, DetectionDataset],
    cfg: DetectConfig,
    runtime: Runtime,
    run_dir: Path,
    *,
    resume: dict[str, Any] | None,
    progress: bool,
    metrics_log: RecordLog | None,
    teacher: Detector | None = None,
    extra_state: Callable[[], dict[str, Any]] | None = None,
    on_complete: Callable[[dict[str, Any], Clock], None] | None = None,
) -> dict[str, Any]:
    """Train `model` for `phase.epochs` (continuing after `resume`'s epoch); return the last epoch's record."""
    train_data, test_data = data
    tcfg, opt = cfg.train, cfg.train.optim
    device = runtime.device
    if runtime.dist.is_distributed:
        convert_batchnorm(model, device)
    optimizer = build_optimizer(
        model, opt.name, lr=opt.peak_lr, weight_decay=phase.weight_decay, betas=opt.betas, momentum=opt.momentum
    )
    start, clock = resume_phase(resume, model=model, optimizer=optimizer)
    params = [p for p in model.parameters() if p.requires_grad]
    steps = len(detection_loader(train_data, tcfg.batch_size, runtime, shuffle=False, seed=0, epoch=0))
    flip = cfg.data.augment and train_data.info.hflip
    fmt = preferred_memory_format(device)

    def run_epoch(epoch: int, loop: EpochLoop) -> dict[str, Any]:
        model.train()
        meter, lr = Meter(), 0.0
        seed = derive_seed(runtime.seed, "detect", phase.name, epoch)
        flips = torch.Generator().manual_seed(derive_seed(seed, "flip"))
        batches = detection_loader(train_data, tcfg.batch_size, runtime, shuffle=True, seed=seed, epoch=epoch)
        for i, (x, targets) in enumerate(batches):
            lr = cosine_with_warmup(
                opt.peak_lr, opt.min_lr, epoch + (i + 1) / steps, phase.epochs, min(opt.warmup_epochs, phase.epochs)
            )
            set_lr(optimizer, lr)
            if flip:
                x, targets = hflip_batch(x, targets, flips)
            x, targets = x.to(device, memory_format=fmt), to_device(targets, device)
            loss, parts = _loss(model, teacher, x, targets, cfg)
            loop.check(loss, f"{phase.name} loss")
            loop.weight_step(loss, optimizer, params, opt.grad_clip)
            meter.update(len(x), train_loss=float(loss.detach()), **parts)
        record: dict[str, Any] = {"phase": phase.name, "lr": lr, **mean_over_ranks(meter.means())}
        last = epoch == phase.epochs - 1
        if last or (tcfg.eval_every and (epoch + 1) % tcfg.eval_every == 0):
            scores = evaluate_map(model, test_data, cfg, device)
            record.update({f"test_{k}": v for k, v in scores.items()})
            logger.info("%s epoch %d: test mAP %.4f, mAP50 %.4f", phase.name, epoch + 1, scores["map"], scores["map50"])
        return record

    def on_epoch_end(epoch: int, record: dict[str, Any]) -> None:
        if epoch == phase.epochs - 1 and on_complete is not None:
            on_complete(record, clock)

    def save(epoch: int, record: dict[str, Any]) -> None:
        state = phase_state(phase.name, epoch, clock, record, model=model, optimizer=optimizer)
        save_checkpoint(
            run_dir / CHECKPOINT_FILE, {**state, **(extra_state() if extra_state else {})}, kind=DETECT_KIND
        )

    plan = EpochPlan(phase.name, ("detect-epoch", phase.name), tcfg.batch_size, progress=progress)
    _, record = drive_epochs(
        range(start, phase.epochs),
        run_epoch,
        runtime,
        plan,
        clock=clock,
        metrics_log=metrics_log,
        save=save,
        on_epoch_end=on_epoch_end,
    )
    return record


def module_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
