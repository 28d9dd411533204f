"""`train_reid`: a re-identification model on any backbone, 1-bit (two-step) or real, and its run directory.

The library entry point behind `binas reid`. Phases (`optim.two_step.Phase`): an optional real twin
trained first as the distillation teacher (`teacher.source: self-real`), then one real phase, or the
two-step 1-bit schedule (step 1 binary activations and real weights, step 2 both binary, initialised
from step 1), each run by `workflows.reid_phase.run_reid_phase` on `engine.epochs.drive_epochs`.

Run directory: `config.yaml`, `genotype.json` (a genotype backbone), `metrics.jsonl`, `checkpoint.pt`
(every epoch; `resume=True` continues it), one model file per phase (`teacher.pt`, `step1.pt`, and
`model.pt` for the final network), `summary.json` (rank-1/5/10, mAP, the backbone's params / OPs /
Mbit, train seconds) and `curves.png`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from binas.config.io import dump_yaml, to_dict
from binas.config.reid import SELF_REAL, ReidConfig
from binas.data.reid import ReidData
from binas.data.reid_datasets import load_reid_data
from binas.engine.metrics_log import MetricLogger, read_metrics, truncate_after
from binas.engine.runtime import Runtime, barrier, broadcast_object, place, seed_everything, setup_runtime
from binas.errors import BinasError, ConfigError
from binas.genotype import GENOTYPES, parse_genotype
from binas.nets.reid import ReidNet, ReidSpec, load_reid_model, policy_dict, save_reid_model
from binas.optim.two_step import ONE_STEP, STEP1, STEP2, TEACHER, Phase, init_from_previous
from binas.quant.policy import BinarizationPolicy
from binas.run_files import CHECKPOINT_FILE, CONFIG_FILE, GENOTYPE_FILE, METRICS_FILE, MODEL_FILE, SUMMARY_FILE
from binas.seeds import derive_seed
from binas.storage.checkpoint import load_checkpoint, save_checkpoint
from binas.storage.files import remove_stale_temp_files, write_json
from binas.storage.lock import run_lock
from binas.workflows.reid_phase import ReidPhaseJob, run_reid_phase

logger = logging.getLogger(__name__)

REID_TRAIN_KIND = "reid-train"  # the checkpoint of a re-ID run
CURVES_FILE = "curves.png"
#: Inputs up to this side get the CIFAR stem (stride 1); larger ones the ImageNet stem (stride 8).
SMALL_INPUT = 64


@dataclass
class ReidResult:
    """A finished re-ID run: retrieval metrics of the final network, its summary and files."""

    run_dir: Path
    rank1: float
    rank5: float
    rank10: float
    mAP: float
    summary: dict[str, Any]
    model_path: Path


def plan_reid_phases(cfg: ReidConfig, policy: BinarizationPolicy) -> list[Phase]:
    """Teacher (when `self-real`), then one real phase, one 1-bit phase, or step 1 + step 2."""
    m, opt, epochs = cfg.model, cfg.optim, cfg.train.epochs
    phases = []
    if cfg.teacher.source == SELF_REAL:
        if not m.binary:
            raise ConfigError("teacher 'self-real' is the real network itself; a real student needs a trained teacher")
        phases.append(
            Phase(TEACHER, BinarizationPolicy.real(), cfg.teacher.epochs or epochs, opt.base_weight_decay, "reid")
        )
    if not m.binary:
        return [*phases, Phase(ONE_STEP, BinarizationPolicy.real(), epochs, opt.base_weight_decay, "reid")]
    if not m.two_step:
        return [*phases, Phase(ONE_STEP, policy, epochs, opt.base_weight_decay, "reid")]
    step1 = Phase(STEP1, policy.activations_only(), epochs, opt.base_weight_decay, "reid")
    return [*phases, step1, Phase(STEP2, policy, epochs, opt.step2_weight_decay, "reid", init_from=STEP1)]


def base_spec(cfg: ReidConfig, data: ReidData) -> tuple[ReidSpec, BinarizationPolicy]:
    """The spec of the run's network (policy filled in per phase) and its 1-bit policy."""
    m, info = cfg.model, data.info
    source = m.backbone
    if Path(source).expanduser().exists():  # a file or run directory: keep the genotype itself
        source = parse_genotype(source).to_json()
    entry = GENOTYPES.get(m.backbone) if m.backbone in GENOTYPES else None
    quantizer = m.weight_quantizer or (entry.weight_quantizer if entry is not None else "mean_abs")
    policy = BinarizationPolicy.preset(m.policy, weight_quantizer=quantizer)
    stem = m.stem or ("cifar" if max(info.height, info.width) <= SMALL_INPUT else "imagenet")
    spec = ReidSpec(
        source,
        m.channels,
        m.layers,
        stem,
        m.family,
        policy_dict(BinarizationPolicy.real()),
        info.num_train_ids,
        info.in_channels,
        info.height,
        info.width,
        m.neck,
        info.name,
    )
    return spec, policy


class _OffsetLog:
    """Adds `global_epoch` (the epoch counted over all phases) to each metrics line."""

    def __init__(self, log: MetricLogger, offset: int) -> None:
        self.log_, self.offset = log, offset

    def log(self, record: Mapping[str, Any]) -> None:
        self.log_.log({"global_epoch": self.offset + record["epoch"], **record})


def _phase_file(run_dir: Path, phases: list[Phase], index: int) -> Path:
    return run_dir / (MODEL_FILE if index == len(phases) - 1 else f"{phases[index].name}.pt")


def _external_teacher(source: str, spec: ReidSpec, runtime: Runtime) -> nn.Module:
    teacher, tspec, _ = load_reid_model(source)
    if (tspec.in_channels, tspec.height, tspec.width) != (spec.in_channels, spec.height, spec.width):
        raise ConfigError(f"teacher {source} takes {tspec.input_size[1:]} inputs, this run {spec.input_size[1:]}")
    return place(teacher, runtime.device).eval().requires_grad_(False)


def train_reid(
    cfg: ReidConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True, runtime: Runtime | None = None
) -> ReidResult:
    """Train the re-ID model `cfg` describes into `run_dir`; `resume=True` continues its checkpoint."""
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    runtime = runtime or setup_runtime(cfg.device, cfg.seed, num_threads=cfg.num_threads)
    payload = None
    if resume and (run_dir / CHECKPOINT_FILE).exists():
        payload = load_checkpoint(run_dir / CHECKPOINT_FILE, kind=REID_TRAIN_KIND)
    # under torchrun every rank trains; rank 0 alone locks and writes the run directory
    with run_lock(run_dir) if runtime.is_main else contextlib.nullcontext():
        if broadcast_object(runtime.is_main and not resume and (run_dir / CONFIG_FILE).exists()):
            raise BinasError(f"{run_dir} already holds a run; continue it with --resume or choose a new --out")
        if runtime.is_main:
            remove_stale_temp_files(run_dir)
        run = _ReidRun(cfg, run_dir, runtime, payload, progress)
        with MetricLogger(run_dir / METRICS_FILE, enabled=runtime.is_main) as metrics_log:
            offset = 0
            for index, phase in enumerate(run.phases):
                run.run(index, _OffsetLog(metrics_log, offset))
                offset += phase.epochs
        wall = time.perf_counter() - t_start
        result = _finish(cfg, run.data, run_dir, run.phases, run.completed, wall) if runtime.is_main else None
        result = broadcast_object(result)
        barrier()
        assert result is not None, "rank 0 broadcasts the result"
        return result


class _ReidRun:
    """The phases of one re-ID run and what they share: data, spec, teacher, finished phases, the
    checkpoint to continue from."""

    def __init__(
        self, cfg: ReidConfig, run_dir: Path, runtime: Runtime, payload: dict[str, Any] | None, progress: bool
    ) -> None:
        self.cfg, self.run_dir, self.runtime, self.payload, self.progress = cfg, run_dir, runtime, payload, progress
        d = cfg.data
        self.data = load_reid_data(
            d.name,
            data_dir=d.data_dir,
            height=d.height,
            width=d.width,
            max_train_ids=d.max_train_ids,
            max_test_ids=d.max_test_ids,
        )
        self.spec, policy = base_spec(cfg, self.data)
        self.phases = plan_reid_phases(cfg, policy)
        if payload is None and runtime.is_main:
            dump_yaml(cfg, run_dir / CONFIG_FILE)
            if self.spec.backbone.startswith("{") or self.spec.backbone in GENOTYPES:
                parse_genotype(self.spec.backbone).save(run_dir / GENOTYPE_FILE)
        self.completed: dict[str, dict[str, Any]] = dict(payload["completed"]) if payload else {}
        if payload is not None and runtime.is_main:
            names = [p.name for p in self.phases]
            done = sum(p.epochs for p in self.phases[: names.index(payload["phase"])])
            truncate_after(run_dir / METRICS_FILE, done + payload["epoch"], key="global_epoch")
        self.teacher: nn.Module | None = None
        if cfg.teacher.source not in (None, SELF_REAL):
            self.teacher = _external_teacher(str(cfg.teacher.source), self.spec, runtime)

    def run(self, index: int, metrics_log: _OffsetLog) -> None:
        """Train phase `index` (or, when it finished before a resume, reload what later phases need)."""
        phase, runtime = self.phases[index], self.runtime
        path = _phase_file(self.run_dir, self.phases, index)
        if phase.name in self.completed:
            if phase.name == TEACHER:
                self.teacher = place(load_reid_model(path)[0], runtime.device).requires_grad_(False)
            return
        spec = self.spec.with_policy(phase.policy)
        here = self.payload if self.payload is not None and self.payload["phase"] == phase.name else None
        net = _build(spec, phase, runtime, self.run_dir, self.phases, index, resuming=here is not None)

        def on_complete(model: ReidNet, result: dict[str, Any]) -> None:
            self.completed[phase.name] = result
            if runtime.is_main:
                save_reid_model(path, spec, model, {"phase": phase.name, **result})
            barrier()  # later phases read the file on every rank

        def save(epoch: int, record: dict[str, Any], state: dict[str, Any]) -> None:
            extra = {"completed": dict(self.completed), "config": to_dict(self.cfg)}
            save_checkpoint(self.run_dir / CHECKPOINT_FILE, {**state, **extra}, kind=REID_TRAIN_KIND)

        teacher = None if phase.name == TEACHER else self.teacher
        job = ReidPhaseJob(phase, net, self.data, teacher, save, on_complete, here)
        logger.info(
            "%s: %d epochs, policy %s, %d training identities",
            phase.name,
            phase.epochs,
            phase.policy.name,
            self.data.info.num_train_ids,
        )
        run_reid_phase(job, self.cfg, runtime, progress=self.progress, metrics_log=metrics_log)
        if phase.name == TEACHER:
            self.teacher = net.eval().requires_grad_(False)


def _build(
    spec: ReidSpec, phase: Phase, runtime: Runtime, run_dir: Path, phases: list[Phase], index: int, *, resuming: bool
) -> ReidNet:
    """The phase's network: initial weights depend only on (seed, phase), so a resumed run rebuilds them;
    step 2 starts from step 1's final weights."""
    seed_everything(derive_seed(runtime.seed, "build", phase.name), deterministic=runtime.deterministic)
    net = place(spec.build(), runtime.device)
    if phase.init_from and not resuming:
        previous = next(i for i, p in enumerate(phases) if p.name == phase.init_from)
        init_from_previous(net, load_reid_model(_phase_file(run_dir, phases, previous))[0].state_dict())
    return net


def _finish(
    cfg: ReidConfig, data: ReidData, run_dir: Path, phases: list[Phase], completed: dict[str, Any], wall: float
) -> ReidResult:
    """Profile the final backbone, write `summary.json` and the curves; the result."""
    from binas.metrics.complexity import profile_model
    from binas.plots.curves import plot_curves

    model, spec, _ = load_reid_model(run_dir / MODEL_FILE)
    final = completed[phases[-1].name]
    prof = profile_model(model.backbone, spec.input_size).to_dict()
    summary: dict[str, Any] = {
        **{k: final[k] for k in ("rank1", "rank5", "rank10", "mAP")},
        "num_queries": final.get("num_queries"),
        "backbone_profile": prof,
        "seconds": round(sum(p.get("seconds", 0.0) for p in completed.values()), 2),
        "cpu_seconds": round(sum(p.get("cpu_seconds", 0.0) for p in completed.values()), 2),
        "wall_seconds": round(wall, 2),
        "phases": completed,
        "dataset": data.info.name,
        "stand_in": data.info.stand_in,
        "backbone": cfg.model.backbone,
        "policy": spec.policy["name"],
        "teacher": cfg.teacher.source,
        "train_ids": data.info.num_train_ids,
        "query_images": len(data.query),
        "gallery_images": len(data.gallery),
        "embedding_dim": model.dim,
        "model": MODEL_FILE,
    }
    write_json(run_dir / SUMMARY_FILE, summary)
    try:
        plot_curves(read_metrics(run_dir / METRICS_FILE), run_dir / CURVES_FILE, title=f"re-ID {data.info.name}")
    except (OSError, ValueError) as exc:  # a plot is a convenience: never fail a finished run for it
        logger.warning("could not draw %s: %s", CURVES_FILE, exc)
    return ReidResult(
        run_dir, final["rank1"], final["rank5"], final["rank10"], final["mAP"], summary, run_dir / MODEL_FILE
    )
