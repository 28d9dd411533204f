"""`train`: from a genotype to a trained (1-bit) network, its test accuracy and its complexity.

The library entry point behind `binas train` (and `binas run`). It plans the phases (`optim.two_step`:
an optional real teacher trained first, then one step or the released two-step schedule), runs each with
`engine.trainer.run_phase`, and writes to the run directory: `config.yaml`, `genotype.json`,
`metrics.jsonl` (one line per epoch), `checkpoint.pt` (every epoch, for `--resume`), one model file per
phase (`teacher.pt`, `step1.pt`, and `model.pt` for the final network) and `summary.json`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from binas.config.io import dump_yaml, to_dict
from binas.config.schema import DEFAULT_WEIGHT_QUANTIZER, RunConfig
from binas.config.train import LossConfig
from binas.engine.checkpoint import load_checkpoint
from binas.engine.evaluator import MODEL_KIND, MODEL_NAME, ModelSpec, load_model, save_model
from binas.engine.metrics_log import MetricLogger, truncate_after
from binas.engine.rundir import write_json
from binas.engine.runtime import (
    Runtime,
    barrier,
    broadcast_object,
    derive_seed,
    preferred_memory_format,
    seed_everything,
    setup_runtime,
)
from binas.engine.trainer import CHECKPOINT_NAME, TRAIN_KIND, LossFn, Outputs, PhaseResult, TrainJob, run_phase
from binas.errors import BinasError, ConfigError
from binas.genotype import GENOTYPES, Genotype, parse_genotype
from binas.objectives.distill import soft_cross_entropy
from binas.optim.builders import build_optimizer, cosine_with_warmup
from binas.optim.two_step import TEACHER, Phase, init_from_previous, plan_phases
from binas.quant.policy import BinarizationPolicy

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"
GENOTYPE_NAME = "genotype.json"
METRICS_NAME = "metrics.jsonl"
SUMMARY_NAME = "summary.json"
SELF_TEACHER = "self-real"
TORCHVISION_PREFIX = "torchvision:"


@dataclass
class TrainResult:
    """A finished training run: final test accuracy, complexity, per-phase results, files."""

    run_dir: Path
    top1: float
    top5: float
    loss: float
    profile: dict[str, Any]
    phases: dict[str, dict[str, Any]]
    seconds: float
    model_path: Path
    summary: dict[str, Any]


def resolve_network(cfg: RunConfig, genotype: str | Path | Genotype | None = None) -> RunConfig:
    """Fill `train.net.family` (a zoo genotype's own family, else `space.family`), `train.net.stem`
    (`imagenet` for ImageNet data, else `space.stem`) and a null `space.weight_quantizer` (a zoo genotype's
    own binarizer, else `mean_abs`), so the saved config says what was built."""
    net = cfg.train.net
    entry = GENOTYPES.get(genotype.strip()) if isinstance(genotype, str) and genotype.strip() in GENOTYPES else None
    family = net.family or (entry.family if entry is not None else cfg.space.family)
    stem = net.stem or ("imagenet" if cfg.data.name == "imagenet" else cfg.space.stem)
    net = dataclasses.replace(net, family=family, stem=stem)
    space = cfg.space
    if space.weight_quantizer is None:  # a zoo genotype trains with its own binarizer (dcp-nas-l: learned scale)
        own = entry.weight_quantizer if entry is not None else DEFAULT_WEIGHT_QUANTIZER
        space = dataclasses.replace(space, weight_quantizer=own)
    return dataclasses.replace(cfg, space=space, train=dataclasses.replace(cfg.train, net=net))


def make_loss(kind: str, cfg: LossConfig, *, net: nn.Module, teacher: nn.Module | None) -> LossFn:
    """The phase's loss on (logits, aux logits, features): CE, KD, CE+KD or CE + the CP kernel loss."""
    if kind in ("kd", "ce+kd") and teacher is None:
        raise ConfigError(f"loss '{kind}' needs a teacher (train.teacher.source)")
    cp_loss = _cp_kernel_loss() if kind == "cp" else None
    kd_weight = 1.0 if kind == "kd" else cfg.kd_weight

    def loss_fn(out: Outputs, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, float]]:
        logits, aux_logits, features = out
        parts: dict[str, float] = {}
        ce = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        loss = ce
        if teacher is not None and kind in ("kd", "ce+kd"):
            with torch.no_grad():
                target = teacher(x)
            t = cfg.temperature  # Hinton et al. (2015): scale by T^2 so gradients keep their size
            kd = soft_cross_entropy(logits, target, t) * (t * t)
            loss = kd if kd_weight == 1.0 else (1.0 - kd_weight) * ce + kd_weight * kd
            parts.update(train_ce=ce.item(), train_kd=kd.item())
        elif cp_loss is not None:
            kwargs = {} if cfg.cp_lambda is None else {"lam": cfg.cp_lambda}
            extra = cp_loss(net, features, y, **kwargs)  # CP-NAS Eq. 4.18: L = L_CE + L_H
            loss = ce + extra
            parts.update(train_ce=ce.item(), train_cp=extra.item())
        if aux_logits is not None:
            loss = loss + cfg.aux_weight * F.cross_entropy(aux_logits, y, label_smoothing=cfg.label_smoothing)
        return loss, parts

    return loss_fn


def _cp_kernel_loss() -> Any:
    try:
        from binas.objectives.cp_loss import cp_kernel_loss
    except ImportError:
        raise ConfigError("loss 'cp' needs binas.objectives.cp_loss, which this binas does not have") from None
    return cp_kernel_loss


def load_teacher(source: str, spec: ModelSpec, device: torch.device, *, pretrained: bool = True) -> nn.Module:
    """A frozen, eval-mode teacher from a binas model checkpoint / run directory or `torchvision:NAME`."""
    if source.startswith(TORCHVISION_PREFIX):
        teacher = _torchvision_teacher(source[len(TORCHVISION_PREFIX):], pretrained)
    else:
        teacher, tspec, _ = load_model(source)
        mine = (spec.num_classes, spec.in_channels, spec.image_size)
        theirs = (tspec.num_classes, tspec.in_channels, tspec.image_size)
        if mine != theirs:
            raise ConfigError(f"teacher {source} was trained for (classes, channels, image size) {theirs}, "
                              f"this run needs {mine}")
    teacher = teacher.to(device, memory_format=preferred_memory_format(device)).eval().requires_grad_(False)
    with torch.no_grad():
        classes = teacher(torch.zeros(spec.input_size, device=device)).shape[-1]
    if classes != spec.num_classes:
        raise ConfigError(f"teacher {source} predicts {classes} classes, the data set has {spec.num_classes}")
    return teacher


def _torchvision_teacher(name: str, pretrained: bool) -> nn.Module:
    try:
        import torchvision
    except ImportError:
        raise ConfigError(f"teacher 'torchvision:{name}' needs torchvision: pip install 'binas[vision]'") from None
    try:
        return torchvision.models.get_model(name, weights="DEFAULT" if pretrained else None)
    except ValueError as exc:
        raise ConfigError(f"torchvision teacher '{name}': {exc}") from None
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"cannot load pretrained weights of torchvision:{name}: {exc}") from None


def _phase_file(run_dir: Path, phase: Phase, last: bool) -> Path:
    return run_dir / (MODEL_NAME if last else f"{phase.name}.pt")


def train(
    cfg: RunConfig,
    genotype: str | Path | Genotype,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    runtime: Runtime | None = None,
) -> TrainResult:
    """Train the network of `genotype` as `cfg.train` says; write the run directory; return the results.

    `genotype` is anything `parse_genotype` reads (a zoo name, genotype.json, a search or train run
    directory). `resume=True` continues from `run_dir/checkpoint.pt`, ending with the weights an
    uninterrupted run ends with. Under torchrun every rank calls this; only rank 0 writes files.
    """
    from binas.api import load_train_data
    from binas.data import load_dataset

    t_start = time.perf_counter()
    cfg = resolve_network(cfg, genotype if isinstance(genotype, str) else None)
    geno = parse_genotype(genotype)
    run_dir = Path(run_dir)
    runtime = runtime or setup_runtime(cfg.device, cfg.seed, num_threads=cfg.num_threads)
    tcfg, device = cfg.train, runtime.device
    payload = load_checkpoint(run_dir / CHECKPOINT_NAME, kind=TRAIN_KIND) if resume else None
    taken = broadcast_object((run_dir / CONFIG_NAME).exists() if runtime.is_main and not resume else False)
    if taken:  # never mix two runs' files (metrics.jsonl is appended to)
        raise BinasError(f"{run_dir} already holds a run; continue it with --resume or choose a new --out")
    if runtime.is_main and not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_yaml(cfg, run_dir / CONFIG_NAME)
        geno.save(run_dir / GENOTYPE_NAME)
    train_data = load_train_data(cfg)
    test_data = load_dataset(cfg.data.name, "test", data_dir=cfg.data.data_dir, image_size=cfg.data.image_size)
    info = test_data.info
    policy = cfg.space.binary_policy() if tcfg.binary else BinarizationPolicy.real()
    uses_teacher = tcfg.loss.uses_teacher
    self_teacher = uses_teacher and tcfg.teacher.source == SELF_TEACHER
    if self_teacher and (not tcfg.binary or policy.is_real):
        raise ConfigError("teacher 'self-real' is the real network itself; give a checkpoint teacher to distil a "
                          "real student")
    phases = plan_phases(tcfg, policy, self_teacher=self_teacher)
    net_cfg = tcfg.net

    def spec_for(phase: Phase) -> ModelSpec:
        return ModelSpec(geno.to_dict(), info.num_classes, info.in_channels, net_cfg.channels, net_cfg.layers,
                         str(net_cfg.stem), str(net_cfg.family), ModelSpec.policy_dict(phase.policy),
                         net_cfg.auxiliary, cfg.data.name, info.image_size, cfg.space.stem_multiplier,
                         cfg.data.data_dir)

    completed: dict[str, dict[str, Any]] = dict(payload.get("completed", {})) if payload else {}
    if runtime.is_main and payload is not None:
        done = sum(p.epochs for p in phases[: [p.name for p in phases].index(payload["phase"])])
        truncate_after(run_dir / METRICS_NAME, done + payload["epoch"], key="global_epoch")
    teacher = None
    if uses_teacher and not self_teacher:
        teacher = load_teacher(tcfg.teacher.source, spec_for(phases[-1]), device, pretrained=tcfg.teacher.pretrained)
    metrics_log = MetricLogger(run_dir / METRICS_NAME, enabled=runtime.is_main)
    offset = 0  # epochs of earlier phases: `global_epoch` orders metrics lines across phases
    try:
        for index, phase in enumerate(phases):
            last = index == len(phases) - 1
            path = _phase_file(run_dir, phase, last)
            if phase.name in completed:
                offset += phase.epochs
                if phase.name == TEACHER:
                    teacher = load_teacher(str(path), spec_for(phase), device)
                continue
            spec = spec_for(phase)
            # the initial weights depend only on (seed, phase), so a resumed run builds what the first one built
            seed_everything(derive_seed(runtime.seed, "build", phase.name), deterministic=runtime.deterministic)
            net = spec.build().to(device, memory_format=preferred_memory_format(device))
            here = payload if payload is not None and payload["phase"] == phase.name else None
            if phase.init_from and here is None:
                init = load_checkpoint(_phase_file(run_dir, phases[index - 1], False), kind=MODEL_KIND)
                init_from_previous(net, init["state_dict"])

            def on_complete(model: nn.Module, result: PhaseResult, spec: ModelSpec = spec, path: Path = path) -> None:
                completed[result.name] = result.to_dict()
                if runtime.is_main:
                    save_model(path, spec, model, {"phase": result.name, **result.to_dict()})
                barrier()

            job = TrainJob(
                phase.name, net, train_data, test_data, phase.epochs, tcfg.batch_size,
                make_optimizer=lambda m, wd=phase.weight_decay: build_optimizer(
                    m, tcfg.optim.name, lr=tcfg.optim.peak_lr, weight_decay=wd, betas=tcfg.optim.betas,
                    momentum=tcfg.optim.momentum),
                lr=lambda p, n=phase.epochs: cosine_with_warmup(tcfg.optim.peak_lr, tcfg.optim.min_lr, p, n,
                                                                min(tcfg.optim.warmup_epochs, n)),
                loss_fn=make_loss(phase.loss, tcfg.loss, net=net, teacher=teacher if phase.name != TEACHER else None),
                grad_clip=tcfg.optim.grad_clip, drop_path_prob=phase.drop_path_prob, amp=tcfg.amp,
                eval_every=tcfg.eval_every, eval_batch_size=tcfg.eval_batch_size, augment=cfg.data.augment,
                num_workers=cfg.data.num_workers, on_complete=on_complete,
            )
            logger.info("%s: %d epochs, policy %s, loss %s", phase.name, phase.epochs, phase.policy.name, phase.loss)
            log = _OffsetLog(metrics_log, offset)
            result = run_phase(job, runtime, run_dir, resume=here, progress=progress, metrics_log=log,  # type: ignore[arg-type]
                               extra_state=lambda s=spec: {"completed": dict(completed), "config": to_dict(cfg),
                                                           "spec": s.to_dict()})
            offset += phase.epochs
            if phase.name == TEACHER:
                teacher = net.eval().requires_grad_(False)
            logger.info("%s done: %s", phase.name, result.to_dict())
    finally:
        metrics_log.close()
    return _finish(cfg, geno, run_dir, phases, completed, runtime, time.perf_counter() - t_start)


class _OffsetLog:
    """Adds `global_epoch` (epoch counted over all phases) to each metrics line."""

    def __init__(self, log: MetricLogger, offset: int) -> None:
        self.log_, self.offset = log, offset

    def log(self, record: dict[str, Any]) -> None:
        self.log_.log({"global_epoch": self.offset + record["epoch"], **record})


def _finish(cfg: RunConfig, geno: Genotype, run_dir: Path, phases: list[Phase], completed: dict[str, Any],
            runtime: Runtime, seconds: float) -> TrainResult:
    """Profile the final network and write `summary.json` (rank 0); every rank gets the same result."""
    from binas.metrics.complexity import profile_model

    model_path = run_dir / MODEL_NAME
    final = completed[phases[-1].name]
    summary: dict[str, Any] = {}
    prof: dict[str, Any] = {}
    if runtime.is_main:
        model, spec, _ = load_model(model_path)
        prof = profile_model(model, spec.input_size).to_dict()
        summary = {
            "top1": final.get("top1"), "top5": final.get("top5"), "loss": final.get("loss"), **prof,
            "seconds": round(sum(p.get("seconds", 0.0) for p in completed.values()), 2),
            "cpu_seconds": round(sum(p.get("cpu_seconds", 0.0) for p in completed.values()), 2),
            "wall_seconds": round(seconds, 2), "phases": completed, "dataset": cfg.data.name,
            "policy": spec.policy["name"], "network": {k: v for k, v in spec.to_dict().items() if k != "genotype"},
            "genotype": geno.to_dict(), "archid": geno.archid, "loss_kind": cfg.train.loss.kind,
            "teacher": cfg.train.teacher.source if cfg.train.loss.uses_teacher else None, "model": MODEL_NAME,
        }
        write_json(run_dir / SUMMARY_NAME, summary)
    barrier()
    return TrainResult(run_dir, final.get("top1", float("nan")), final.get("top5", float("nan")),
                       final.get("loss", float("nan")), prof, completed, summary.get("seconds", 0.0), model_path,
                       summary)
