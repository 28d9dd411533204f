"""`train`: from a genotype to a trained (1-bit) network, its test accuracy and its complexity.

The library entry point behind `binas train` (and `binas run`). It plans the phases (`optim.two_step`:
an optional real teacher trained first, then one step or the released two-step schedule), runs each with
`engine.trainer.run_phase`, and writes to the run directory: `config.yaml`, `genotype.json`,
`metrics.jsonl` (one line per epoch), `checkpoint.pt` (every epoch, for `--resume`), one model file per
phase (`teacher.pt`, `step1.pt`, and `model.pt` for the final network) and `summary.json`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from binas.config.io import dump_yaml, to_dict
from binas.config.schema import DEFAULT_WEIGHT_QUANTIZER, RunConfig, WeightQuantizerName
from binas.config.train import LossConfig, OpFamilyName
from binas.data import load_dataset, load_training_set
from binas.engine.metrics_log import MetricLogger, truncate_after
from binas.engine.runtime import (
    Runtime,
    barrier,
    broadcast_object,
    place,
    seed_everything,
    setup_runtime,
)
from binas.engine.trainer import TRAIN_KIND, LossFn, Outputs, PhaseResult, TrainJob, run_phase
from binas.errors import BinasError, ConfigError
from binas.genotype import GENOTYPES, Genotype, parse_genotype
from binas.nets.model_file import MODEL_KIND, BuiltNetwork, ModelSpec, load_model, save_model
from binas.nets.reference import REFERENCE_NETWORKS, is_reference, reference_name
from binas.objectives.cp_loss import cp_kernel_loss
from binas.objectives.distill import soft_cross_entropy
from binas.optim.builders import build_optimizer, cosine_with_warmup
from binas.optim.two_step import TEACHER, Phase, init_from_previous, plan_phases
from binas.quant.policy import BinarizationPolicy
from binas.run_files import CHECKPOINT_FILE, CONFIG_FILE, GENOTYPE_FILE, METRICS_FILE, MODEL_FILE, SUMMARY_FILE
from binas.seeds import derive_seed
from binas.storage.checkpoint import load_checkpoint
from binas.storage.files import remove_stale_temp_files, write_json
from binas.storage.lock import run_lock

logger = logging.getLogger(__name__)

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
    #: the final network in eval mode on the CPU (rank 0; None on the other torchrun ranks)
    model: nn.Module | None = None


def resolve_network(cfg: RunConfig, genotype: str | Path | Genotype | None = None) -> RunConfig:
    """Fill `train.net.arch` (a reference network's name given instead of a genotype), `train.net.family`
    (a zoo genotype's own family, else `space.family`), `train.net.stem` (`imagenet` for ImageNet data, else
    `space.stem`) and a null `space.weight_quantizer` (a zoo genotype's own binarizer, else `mean_abs`), so
    the saved config says what was built."""
    net = cfg.train.net
    if is_reference(genotype):
        assert isinstance(genotype, str)
        net = dataclasses.replace(net, arch=reference_name(genotype))
    elif net.arch is not None:
        if genotype is not None:
            raise ConfigError(f"train.net.arch names the reference network '{net.arch}'; give no genotype with it")
        net = dataclasses.replace(net, arch=reference_name(net.arch))
    if net.arch is not None and net.auxiliary:
        raise ConfigError(f"reference network '{net.arch}' has no auxiliary head (train.net.auxiliary)")
    named = isinstance(genotype, str) and genotype.strip() in GENOTYPES and net.arch is None
    entry = GENOTYPES.get(cast(str, genotype).strip()) if named else None
    # A zoo entry holds plain strings; every published family and binarizer is one a config can name.
    family = net.family or (cast(OpFamilyName, entry.family) if entry is not None else cfg.space.family)
    stem = net.stem or ("imagenet" if cfg.data.name == "imagenet" else cfg.space.stem)
    net = dataclasses.replace(net, family=family, stem=stem)
    space = cfg.space
    if space.weight_quantizer is None:  # a zoo genotype trains with its own binarizer (dcp-nas-l: learned scale)
        own = cast(WeightQuantizerName, entry.weight_quantizer) if entry is not None else DEFAULT_WEIGHT_QUANTIZER
        space = dataclasses.replace(space, weight_quantizer=own)
    return dataclasses.replace(cfg, space=space, train=dataclasses.replace(cfg.train, net=net))


def make_loss(kind: str, cfg: LossConfig, *, net: nn.Module, teacher: nn.Module | None) -> LossFn:
    """The phase's loss on (logits, aux logits, features): CE, KD, CE+KD or CE + the CP kernel loss."""
    if kind in ("kd", "ce+kd") and teacher is None:
        raise ConfigError(f"loss '{kind}' needs a teacher (train.teacher.source)")
    cp_loss = cp_kernel_loss if kind == "cp" else None
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
            # CP-NAS Eq. 4.18: L = L_CE + L_H
            extra = cp_loss(net, features, y) if cfg.cp_lambda is None else cp_loss(net, features, y, lam=cfg.cp_lambda)
            loss = ce + extra
            parts.update(train_ce=ce.item(), train_cp=extra.item())
        if aux_logits is not None:
            loss = loss + cfg.aux_weight * F.cross_entropy(aux_logits, y, label_smoothing=cfg.label_smoothing)
        return loss, parts

    return loss_fn


def load_teacher(source: str, spec: ModelSpec, device: torch.device, *, pretrained: bool = True) -> nn.Module:
    """A frozen, eval-mode teacher from a binas model checkpoint / run directory or `torchvision:NAME`."""
    if source.startswith(TORCHVISION_PREFIX):
        teacher = _torchvision_teacher(source[len(TORCHVISION_PREFIX) :], pretrained)
    else:
        teacher, tspec, _ = load_model(source)
        mine = (spec.num_classes, spec.in_channels, spec.image_size)
        theirs = (tspec.num_classes, tspec.in_channels, tspec.image_size)
        if mine != theirs:
            raise ConfigError(
                f"teacher {source} was trained for (classes, channels, image size) {theirs}, this run needs {mine}"
            )
    teacher = place(teacher, device).eval().requires_grad_(False)
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
    except Exception as exc:  # noqa: BLE001 - installed but built for another torch (its C++ ops fail to load)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"teacher 'torchvision:{name}': torchvision does not load beside torch {torch.__version__} ({first}); "
            "install the torchvision build made for this torch (same release, same CPU/CUDA variant)"
        ) from None
    try:
        return torchvision.models.get_model(name, weights="DEFAULT" if pretrained else None)
    except ValueError as exc:
        raise ConfigError(f"torchvision teacher '{name}': {exc}") from None
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"cannot load pretrained weights of torchvision:{name}: {exc}") from None


def _phase_file(run_dir: Path, phase: Phase, last: bool) -> Path:
    return run_dir / (MODEL_FILE if last else f"{phase.name}.pt")


def train(
    cfg: RunConfig,
    genotype: str | Path | Genotype | None,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    runtime: Runtime | None = None,
) -> TrainResult:
    """Train the network of `genotype` as `cfg.train` says; write the run directory; return the results.

    `genotype` is anything `parse_genotype` reads (a zoo name, genotype.json, a search or train run
    directory), or the name of a reference network (`birealnet18`, `reactnet-a`; None when
    `cfg.train.net.arch` names it, as in a resumed run's config). `resume=True` continues from
    `run_dir/checkpoint.pt`, ending with the weights an uninterrupted run ends with. Under torchrun every
    rank calls this; only rank 0 writes files.
    """
    t_start = time.perf_counter()
    cfg = resolve_network(cfg, genotype if isinstance(genotype, str) or genotype is None else None)
    geno = None if cfg.train.net.arch is not None else parse_genotype(cast("str | Path | Genotype", genotype))
    run_dir = Path(run_dir)
    runtime = runtime or setup_runtime(cfg.device, cfg.seed, num_threads=cfg.num_threads)
    restart = resume and not (run_dir / CHECKPOINT_FILE).exists()
    if restart:
        logger.warning("%s has no checkpoint yet (stopped in its first epoch): starting it from the beginning", run_dir)
    payload = load_checkpoint(run_dir / CHECKPOINT_FILE, kind=TRAIN_KIND) if resume and not restart else None
    with run_lock(run_dir) if runtime.is_main else contextlib.nullcontext():
        if runtime.is_main:
            remove_stale_temp_files(run_dir)
        _start_run_dir(cfg, geno, run_dir, runtime, resume=payload is not None, reuse=restart)
        run = _PhaseRunner(cfg, geno, run_dir, runtime, payload, progress)
        with MetricLogger(run_dir / METRICS_FILE, enabled=runtime.is_main) as metrics_log:
            offset = 0  # epochs of earlier phases: `global_epoch` orders metrics lines across phases
            for index in range(len(run.phases)):
                run.run(index, _OffsetLog(metrics_log, offset))
                offset += run.phases[index].epochs
        return _finish(cfg, geno, run_dir, run.phases, run.completed, runtime, time.perf_counter() - t_start)


def _start_run_dir(
    cfg: RunConfig, geno: Genotype | None, run_dir: Path, runtime: Runtime, *, resume: bool, reuse: bool = False
) -> None:
    """A new run writes its config and genotype (a reference network has none); a directory that holds
    another run is refused (`reuse`: it is this run's own directory, restarted before its first checkpoint)."""
    taken = broadcast_object((run_dir / CONFIG_FILE).exists() if runtime.is_main and not (resume or reuse) else False)
    if taken:  # never mix two runs' files (metrics.jsonl is appended to)
        raise BinasError(f"{run_dir} already holds a run; continue it with --resume or choose a new --out")
    if runtime.is_main and not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_yaml(cfg, run_dir / CONFIG_FILE)
        if geno is not None:
            geno.save(run_dir / GENOTYPE_FILE)


class _PhaseRunner:
    """The phases of one training run (`optim.two_step.plan_phases`) and what they share: data, the model
    spec, the teacher, the finished phases' results and, on resume, the checkpoint to continue from."""

    def __init__(
        self,
        cfg: RunConfig,
        geno: Genotype | None,
        run_dir: Path,
        runtime: Runtime,
        payload: dict[str, Any] | None,
        progress: bool,
    ) -> None:
        self.cfg, self.geno, self.run_dir, self.runtime, self.payload = cfg, geno, run_dir, runtime, payload
        self.progress = progress
        tcfg, data = cfg.train, cfg.data
        self.train_data = load_training_set(
            data.name, data_dir=data.data_dir, image_size=data.image_size, max_samples=data.max_train_samples
        )
        self.test_data = load_dataset(data.name, "test", data_dir=data.data_dir, image_size=data.image_size)
        policy = cfg.space.binary_policy() if tcfg.binary else BinarizationPolicy.real()
        self_teacher = tcfg.loss.uses_teacher and tcfg.teacher.source == SELF_TEACHER
        if self_teacher and (not tcfg.binary or policy.is_real):
            raise ConfigError(
                "teacher 'self-real' is the real network itself; give a checkpoint teacher to distil a real student"
            )
        self.phases = plan_phases(tcfg, policy, self_teacher=self_teacher)
        self.completed: dict[str, dict[str, Any]] = dict(payload.get("completed", {})) if payload else {}
        if runtime.is_main and payload is not None:
            done = sum(p.epochs for p in self.phases[: [p.name for p in self.phases].index(payload["phase"])])
            truncate_after(run_dir / METRICS_FILE, done + payload["epoch"], key="global_epoch")
        self.teacher: nn.Module | None = None
        if tcfg.loss.uses_teacher and not self_teacher:
            self.teacher = load_teacher(
                tcfg.teacher.source, self.spec(self.phases[-1]), runtime.device, pretrained=tcfg.teacher.pretrained
            )

    def spec(self, phase: Phase) -> ModelSpec:
        """The model file's spec of `phase`'s network."""
        net, info = self.cfg.train.net, self.test_data.info
        layers = REFERENCE_NETWORKS.get(net.arch).blocks if net.arch is not None else net.layers
        return ModelSpec(
            self.geno.to_dict() if self.geno is not None else {},
            info.num_classes,
            info.in_channels,
            net.channels,
            layers,
            str(net.stem),
            str(net.family),
            ModelSpec.policy_dict(phase.policy),
            net.auxiliary,
            self.cfg.data.name,
            info.image_size,
            self.cfg.space.stem_multiplier,
            self.cfg.data.data_dir,
            net.arch,
        )

    def run(self, index: int, metrics_log: _OffsetLog) -> None:
        """Train phase `index` (or, when it finished before a resume, reload what later phases need)."""
        phase, runtime, device = self.phases[index], self.runtime, self.runtime.device
        path = _phase_file(self.run_dir, phase, index == len(self.phases) - 1)
        if phase.name in self.completed:
            if phase.name == TEACHER:
                self.teacher = load_teacher(str(path), self.spec(phase), device)
            return
        spec = self.spec(phase)
        # the initial weights depend only on (seed, phase), so a resumed run builds what the first one built
        seed_everything(derive_seed(runtime.seed, "build", phase.name), deterministic=runtime.deterministic)
        net = place(spec.build(), device)
        here = self.payload if self.payload is not None and self.payload["phase"] == phase.name else None
        if phase.init_from and here is None:
            init = load_checkpoint(_phase_file(self.run_dir, self.phases[index - 1], False), kind=MODEL_KIND)
            init_from_previous(net, init["state_dict"])
        logger.info(
            "%s: %d epochs, policy %s, loss %s (%s, %d CPU thread(s))",
            phase.name,
            phase.epochs,
            phase.policy.name,
            phase.loss,
            device,
            runtime.num_threads,
        )
        result = run_phase(
            self._job(phase, net, spec, path),
            runtime,
            self.run_dir,
            resume=here,
            progress=self.progress,
            metrics_log=metrics_log,
            extra_state=lambda: {
                "completed": dict(self.completed),
                "config": to_dict(self.cfg),
                "spec": spec.to_dict(),
            },
        )
        if phase.name == TEACHER:
            self.teacher = net.eval().requires_grad_(False)
        logger.info("%s done: %s", phase.name, result.to_dict())

    def _job(self, phase: Phase, net: BuiltNetwork, spec: ModelSpec, path: Path) -> TrainJob:
        tcfg, opt = self.cfg.train, self.cfg.train.optim

        def on_complete(model: nn.Module, result: PhaseResult) -> None:
            self.completed[result.name] = result.to_dict()
            if self.runtime.is_main:
                save_model(path, spec, model, {"phase": result.name, **result.to_dict()})
            barrier()

        return TrainJob(
            phase.name,
            net,
            self.train_data,
            self.test_data,
            phase.epochs,
            tcfg.batch_size,
            make_optimizer=lambda m: build_optimizer(
                m, opt.name, lr=opt.peak_lr, weight_decay=phase.weight_decay, betas=opt.betas, momentum=opt.momentum
            ),
            lr=lambda p: cosine_with_warmup(
                opt.peak_lr, opt.min_lr, p, phase.epochs, min(opt.warmup_epochs, phase.epochs)
            ),
            loss_fn=make_loss(phase.loss, tcfg.loss, net=net, teacher=self.teacher if phase.name != TEACHER else None),
            grad_clip=opt.grad_clip,
            drop_path_prob=phase.drop_path_prob,
            amp=tcfg.amp,
            eval_every=tcfg.eval_every,
            eval_batch_size=tcfg.eval_batch_size,
            augment=self.cfg.data.augment,
            num_workers=self.cfg.data.num_workers,
            on_complete=on_complete,
        )


class _OffsetLog:
    """Adds `global_epoch` (epoch counted over all phases) to each metrics line."""

    def __init__(self, log: MetricLogger, offset: int) -> None:
        self.log_, self.offset = log, offset

    def log(self, record: Mapping[str, Any]) -> None:
        self.log_.log({"global_epoch": self.offset + record["epoch"], **record})


def _finish(
    cfg: RunConfig,
    geno: Genotype | None,
    run_dir: Path,
    phases: list[Phase],
    completed: dict[str, Any],
    runtime: Runtime,
    seconds: float,
) -> TrainResult:
    """Profile the final network and write `summary.json` (rank 0); every rank gets the same result."""
    from binas.metrics.complexity import profile_model

    model_path = run_dir / MODEL_FILE
    final = completed[phases[-1].name]
    summary: dict[str, Any] = {}
    prof: dict[str, Any] = {}
    model: nn.Module | None = None
    if runtime.is_main:
        model, spec, _ = load_model(model_path)
        prof = profile_model(model, spec.input_size).to_dict()
        summary = {
            "top1": final.get("top1"),
            "top5": final.get("top5"),
            "loss": final.get("loss"),
            **prof,
            "seconds": round(sum(p.get("seconds", 0.0) for p in completed.values()), 2),
            "cpu_seconds": round(sum(p.get("cpu_seconds", 0.0) for p in completed.values()), 2),
            "wall_seconds": round(seconds, 2),
            "phases": completed,
            "dataset": cfg.data.name,
            "policy": spec.policy["name"],
            "network": {k: v for k, v in spec.to_dict().items() if k != "genotype"},
            "genotype": geno.to_dict() if geno is not None else None,
            "archid": geno.archid if geno is not None else spec.arch,
            "loss_kind": cfg.train.loss.kind,
            "teacher": cfg.train.teacher.source if cfg.train.loss.uses_teacher else None,
            "model": MODEL_FILE,
        }
        write_json(run_dir / SUMMARY_FILE, summary)
    barrier()
    return TrainResult(
        run_dir,
        final.get("top1", float("nan")),
        final.get("top5", float("nan")),
        final.get("loss", float("nan")),
        prof,
        completed,
        summary.get("seconds", 0.0),
        model_path,
        summary,
        model,
    )
