"""`detect`: object detection on a searched (or reference) backbone, 1-bit or real, to a run directory.

The library entry point behind `binas detect`. Phases (the classification retraining recipe,
`optim.two_step`): a real run trains one phase; a 1-bit run trains step 1 (binary activations, real
weights) then step 2 (both binary, initialised from step 1), optionally after a real twin that distils
into both steps (`distill.weight`). Each phase runs on `engine.epochs.drive_epochs`
(`workflows.detect_phase`). The run directory gets `config.yaml`, `metrics.jsonl`, `checkpoint.pt`
(every epoch, for `--resume`), one model file per phase (`teacher.pt`, `step1.pt`, final `model.pt`),
`summary.json` (mAP, mAP50, the backbone's params/OPs/Mbit, seconds), `plots/curves.png` and
`plots/detections.png` (test images with predicted and true boxes).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from binas.config.detect import DetectConfig
from binas.config.io import dump_yaml, from_dict, load_yaml, to_dict
from binas.data.detection import DetectionDataset
from binas.data.detection_sets import load_detection_dataset
from binas.engine.epochs import Clock
from binas.engine.metrics_log import MetricLogger, read_metrics, truncate_after
from binas.engine.runtime import Runtime, barrier, broadcast_object, place, seed_everything, setup_runtime
from binas.errors import BinasError
from binas.nets.backbone import backbone
from binas.nets.detector import Detector
from binas.optim.two_step import STEP1, STEP2, TEACHER, init_from_previous
from binas.quant.policy import BinarizationPolicy
from binas.run_files import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, MODEL_FILE, PLOTS_DIR, SUMMARY_FILE
from binas.seeds import derive_seed
from binas.storage.checkpoint import load_checkpoint, save_checkpoint
from binas.storage.files import remove_stale_temp_files, write_json
from binas.storage.lock import run_lock
from binas.workflows.detect_phase import DETECT_KIND, DetectPhase, module_params, predict, run_detect_phase

logger = logging.getLogger(__name__)

DETECTOR_KIND = "detector"  # the kind of a detection model file
REAL = "train"
#: Default (train, test) split names per data set.
DEFAULT_SPLITS = {"digits-detection": ("train", "test"), "voc": ("trainval", "test"), "coco": ("train", "val")}


@dataclass
class DetectResult:
    """A finished detection run: final test mAP, backbone complexity, per-phase results, files."""

    run_dir: Path
    map: float
    map50: float
    summary: dict[str, Any]
    model_path: Path


def plan_detect_phases(cfg: DetectConfig) -> list[DetectPhase]:
    """Real: one phase; 1-bit: step 1 + step 2 (or one step); a real twin first when distillation is on."""
    tcfg, opt = cfg.train, cfg.train.optim
    wd = opt.base_weight_decay
    if not tcfg.binary:
        return [DetectPhase(REAL, BinarizationPolicy.real(), tcfg.epochs, wd)]
    policy = BinarizationPolicy.preset(cfg.model.policy)
    phases = []
    if cfg.distill.weight > 0:
        phases.append(DetectPhase(TEACHER, BinarizationPolicy.real(), cfg.distill.teacher_epochs or tcfg.epochs, wd))
    if not tcfg.two_step:
        return [*phases, DetectPhase(REAL, policy, tcfg.epochs, wd)]
    return [
        *phases,
        DetectPhase(STEP1, policy.activations_only(), tcfg.epochs, wd),
        DetectPhase(STEP2, policy, tcfg.epochs, opt.step2_weight_decay, init_from=STEP1),
    ]


def build_detector(cfg: DetectConfig, num_classes: int, policy: BinarizationPolicy) -> Detector:
    """A fresh detector on `cfg.model.backbone` with the backbone binarized by `policy`."""
    m = cfg.model
    body = backbone(m.backbone, channels=m.channels, layers=m.layers, stem=m.stem, family=m.family, policy=policy)
    return Detector(
        body, num_classes, neck_channels=m.neck_channels, head_channels=m.head_channels, upsample=m.upsample
    )


def load_datasets(cfg: DetectConfig) -> tuple[DetectionDataset, DetectionDataset]:
    d = cfg.data
    train_split, test_split = DEFAULT_SPLITS.get(d.name, ("train", "test"))
    sets = []
    for split, limit in (
        (d.train_split or train_split, d.max_train_images),
        (d.test_split or test_split, d.max_test_images),
    ):
        sets.append(
            load_detection_dataset(d.name, split, data_dir=d.data_dir, image_size=d.image_size, max_images=limit)
        )
    return sets[0], sets[1]


def save_detector(
    path: Path, model: Detector, cfg: DetectConfig, phase: DetectPhase, result: Mapping[str, Any]
) -> None:
    payload = {
        "config": to_dict(cfg),
        "phase": phase.name,
        "policy": phase.policy.name,
        "num_classes": model.num_classes,
        "state_dict": model.state_dict(),
        "result": dict(result),
    }
    save_checkpoint(path, payload, kind=DETECTOR_KIND)


def load_detector(path: str | Path) -> tuple[Detector, DetectConfig]:
    """A trained detector (eval mode, CPU) and its run's config, from a detection model file or run directory."""
    path = Path(path)
    path = path / MODEL_FILE if path.is_dir() else path
    payload = load_checkpoint(path, kind=DETECTOR_KIND)
    cfg = from_dict(DetectConfig, payload["config"])
    name = payload["policy"]
    policy = BinarizationPolicy.real() if name == "real" else BinarizationPolicy.preset(cfg.model.policy)
    if name.endswith("-step1"):
        policy = policy.activations_only()
    model = build_detector(cfg, int(payload["num_classes"]), policy)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), cfg


class _OffsetLog:
    """Adds `global_epoch` (epoch counted over all phases) to each metrics line."""

    def __init__(self, log: MetricLogger, offset: int) -> None:
        self.log_, self.offset = log, offset

    def log(self, record: Mapping[str, Any]) -> None:
        self.log_.log({"global_epoch": self.offset + record["epoch"], **record})


def detect(
    cfg: DetectConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    runtime: Runtime | None = None,
) -> DetectResult:
    """Train a detector as `cfg` says, writing `run_dir`; `resume=True` continues from its checkpoint."""
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    runtime = runtime or setup_runtime(cfg.device, cfg.seed, num_threads=cfg.num_threads)
    restart = resume and not (run_dir / CHECKPOINT_FILE).exists()
    payload = load_checkpoint(run_dir / CHECKPOINT_FILE, kind=DETECT_KIND) if resume and not restart else None
    with run_lock(run_dir) if runtime.is_main else contextlib.nullcontext():
        taken = broadcast_object(runtime.is_main and not resume and (run_dir / CONFIG_FILE).exists())
        if taken:
            raise BinasError(f"{run_dir} already holds a run; continue it with --resume or choose a new --out")
        if runtime.is_main:
            remove_stale_temp_files(run_dir)
            if payload is None and not restart:
                run_dir.mkdir(parents=True, exist_ok=True)
                dump_yaml(cfg, run_dir / CONFIG_FILE)
        run = _DetectRun(cfg, run_dir, runtime, payload, progress)
        with MetricLogger(run_dir / METRICS_FILE, enabled=runtime.is_main) as metrics_log:
            offset = 0
            for index, phase in enumerate(run.phases):
                run.run(index, _OffsetLog(metrics_log, offset))
                offset += phase.epochs
        return _finish(cfg, run_dir, run.phases, run.completed, run.data[1], runtime, time.perf_counter() - t_start)


class _DetectRun:
    """The phases of one detection run and what they share: data, the teacher, finished phases, the
    checkpoint to continue from."""

    def __init__(
        self, cfg: DetectConfig, run_dir: Path, runtime: Runtime, payload: dict[str, Any] | None, progress: bool
    ) -> None:
        self.cfg, self.run_dir, self.runtime, self.payload, self.progress = cfg, run_dir, runtime, payload, progress
        self.data = load_datasets(cfg)
        self.phases = plan_detect_phases(cfg)
        self.completed: dict[str, dict[str, Any]] = dict(payload.get("completed", {})) if payload else {}
        if runtime.is_main and payload is not None:
            names = [p.name for p in self.phases]
            done = sum(p.epochs for p in self.phases[: names.index(payload["phase"])])
            truncate_after(run_dir / METRICS_FILE, done + payload["epoch"], key="global_epoch")
        self.teacher: Detector | None = None

    def run(self, index: int, metrics_log: _OffsetLog) -> None:
        """Train phase `index` (or, when it finished before a resume, reload what later phases need)."""
        cfg, runtime, phase = self.cfg, self.runtime, self.phases[index]
        path = self.run_dir / (MODEL_FILE if index == len(self.phases) - 1 else f"{phase.name}.pt")
        if phase.name in self.completed:
            if phase.name == TEACHER:
                self.teacher = place(load_detector(path)[0], runtime.device).requires_grad_(False)
            return
        # the initial weights depend only on (seed, phase), so a resumed run builds what the first one built
        seed_everything(derive_seed(runtime.seed, "build", phase.name), deterministic=runtime.deterministic)
        model = place(build_detector(cfg, self.data[0].info.num_classes, phase.policy), runtime.device)
        here = self.payload if self.payload is not None and self.payload["phase"] == phase.name else None
        if phase.init_from and here is None:
            init = load_checkpoint(self.run_dir / f"{phase.init_from}.pt", kind=DETECTOR_KIND)
            init_from_previous(model, init["state_dict"])
        logger.info(
            "%s: %d epochs, backbone policy %s (%s)", phase.name, phase.epochs, phase.policy.name, runtime.device
        )

        def on_complete(record: dict[str, Any], clock: Clock) -> None:
            result = {k: v for k, v in record.items() if k.startswith(("train_", "test_"))}
            seconds = {"seconds": round(clock.seconds, 2), "cpu_seconds": round(clock.cpu_seconds, 2)}
            self.completed[phase.name] = {"epochs": phase.epochs, **seconds, **result}
            if runtime.is_main:
                save_detector(path, model, cfg, phase, self.completed[phase.name])
            barrier()

        run_detect_phase(
            phase,
            model,
            self.data,
            cfg,
            runtime,
            self.run_dir,
            resume=here,
            progress=self.progress,
            metrics_log=metrics_log,
            teacher=self.teacher if phase.name != TEACHER else None,
            extra_state=lambda: {"completed": dict(self.completed), "config": to_dict(cfg)},
            on_complete=on_complete,
        )
        if phase.name == TEACHER:
            self.teacher = model.eval().requires_grad_(False)


def _finish(
    cfg: DetectConfig,
    run_dir: Path,
    phases: list[DetectPhase],
    completed: dict[str, dict[str, Any]],
    test_data: DetectionDataset,
    runtime: Runtime,
    seconds: float,
) -> DetectResult:
    """Profile the final backbone, write `summary.json` and the plots (rank 0)."""
    from binas.metrics.complexity import profile_model

    final = completed[phases[-1].name]
    summary: dict[str, Any] = {}
    if runtime.is_main:
        model, _ = load_detector(run_dir / MODEL_FILE)
        size = test_data.info.image_size
        prof = profile_model(model.backbone, (1, 3, size, size)).to_dict()
        summary = {
            "map": final.get("test_map"),
            "map50": final.get("test_map50"),
            "map75": final.get("test_map75"),
            "backbone": {"name": cfg.model.backbone, "policy": phases[-1].policy.name, **prof},
            "detector_params": module_params(model),
            "train_seconds": round(sum(p.get("seconds", 0.0) for p in completed.values()), 2),
            "train_cpu_seconds": round(sum(p.get("cpu_seconds", 0.0) for p in completed.values()), 2),
            "wall_seconds": round(seconds, 2),
            "phases": completed,
            "dataset": cfg.data.name,
            "image_size": size,
            "distill": cfg.distill.weight > 0,
            "model": MODEL_FILE,
        }
        summary["plots"] = _draw(run_dir, model, cfg, test_data)
        write_json(run_dir / SUMMARY_FILE, summary)
    summary = broadcast_object(summary)
    barrier()
    return DetectResult(run_dir, float(summary.get("map") or 0.0), float(summary.get("map50") or 0.0), summary,
                        run_dir / MODEL_FILE)  # fmt: skip


def _draw(run_dir: Path, model: Detector, cfg: DetectConfig, test_data: DetectionDataset) -> list[str]:
    """`plots/curves.png` (metrics.jsonl) and `plots/detections.png`; their paths relative to the run."""
    from binas.plots.curves import plot_curves
    from binas.plots.detection import draw_detections

    n = min(cfg.train.num_drawn, len(test_data))
    if n == 0:
        return []
    subset = torch.utils.data.Subset(test_data, range(n))
    subset.info = test_data.info  # type: ignore[attr-defined]
    preds, truths = predict(model, subset, cfg, torch.device("cpu"))  # type: ignore[arg-type]
    images = torch.stack([test_data[i][0] for i in range(n)])
    records = read_metrics(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).is_file() else []
    out = [plot_curves(records, run_dir / PLOTS_DIR / "curves.png", title=f"detect {cfg.data.name}")]
    out.append(draw_detections(images, truths, preds, test_data.info, run_dir / PLOTS_DIR / "detections.png"))
    return [str(p.relative_to(run_dir)) for p in out if p is not None]


def load_detect_run_config(run_dir: str | Path) -> DetectConfig:
    """The config a detection run saved in its directory (`config.yaml`)."""
    path = Path(run_dir)
    if not (path / CONFIG_FILE).is_file():
        raise BinasError(f"no detection run in {path} (no {CONFIG_FILE})")
    return from_dict(DetectConfig, load_yaml(path / CONFIG_FILE))
