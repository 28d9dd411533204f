"""Transfer (a script, not a test): searched 1-bit cells as backbones for detection and retrieval, on one budget.

DCP-NAS reports that its searched backbones transfer to object detection and person re-identification.
This measures that claim on the bundled stand-ins, where it can run on a fresh machine: `digits-detection`
(`binas detect`, CenterNet-style head, COCO mAP by pycocotools) and `digits-reid` (`binas reid`, BN-neck,
CE + batch-hard triplet, rank-1 / mAP with the Market-1501 protocol; a stand-in, not person re-ID).

Backbones, each 1-bit (two-step recipe) and real, with the same width, epochs, data and seeds:

* `dcp-nas`: the released DCP-NAS-L cell (`dcp-nas-l` in the zoo: its op family and binarizer);
* `darts`: DARTS-V2's cell (found by DARTS on CIFAR-10);
* `random`: a uniformly random cell (fixed seed, `binas.genotype.encoding.random_genotype`);
* `birealnet18`, `reactnet-a`: the hand-designed 1-bit networks the papers compare against.

Every run is a real `binas detect` / `binas reid` run directory under `--work-dir`; finished runs are read
back, not redone, so the script resumes. Results: per run and mean +- std over seeds, with the backbone's
params, OPs and Mbit and the training CPU seconds, in `benchmarks/results/transfer.json`; `--readme`
writes the README block from it.

    python benchmarks/transfer.py [--jobs 2] [--seeds 0 1 2] [--tasks detect reid] [--work-dir runs/transfer]
        [--out benchmarks/results/transfer.json] [--readme] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from readme_block import write_block

HERE = Path(__file__).parent
DEFAULT_OUT = HERE / "results" / "transfer.json"
README = HERE.parent / "README.md"
README_BEGIN, README_END = "<!-- transfer:begin -->", "<!-- transfer:end -->"
BACKBONES = ("dcp-nas", "darts", "random", "birealnet18", "reactnet-a")
ZOO = {"dcp-nas": "dcp-nas-l", "darts": "darts-v2"}
RANDOM_CELL_SEED = 0
#: The shared budget (one value per task; `--quick` shrinks it for tests).
BUDGET: dict[str, list[str]] = {
    "detect": [
        "model.channels=8",
        "model.layers=3",
        "train.epochs=4",
        "data.max_train_images=1000",
        "data.max_test_images=200",
        "train.num_drawn=0",
    ],
    "reid": [
        "model.channels=8",
        "model.layers=3",
        "train.epochs=3",
        "data.max_train_ids=800",
        "data.max_test_ids=200",
        "train.eval_every=0",
    ],
}
QUICK: dict[str, list[str]] = {
    "detect": ["train.epochs=1", "data.max_train_images=32", "data.max_test_images=16", "model.channels=4"],
    "reid": ["train.epochs=1", "data.max_train_ids=40", "data.max_test_ids=20", "model.channels=4"],
}
#: The stem of each backbone kind per task: detection on 64x64 canvases wants strides 8/16/32 (ImageNet
#: stems); retrieval on 16x16 digits keeps full resolution (CIFAR stems).
STEMS = {"detect": "imagenet", "reid": "cifar"}


def backbone_source(name: str, work: Path) -> str:
    """What `binas.backbone` takes for a benchmark backbone name (the random cell: a genotype file)."""
    if name == "random":
        import torch

        from binas.genotype.encoding import random_genotype

        path = work / "random_cell.json"
        if not path.is_file():
            work.mkdir(parents=True, exist_ok=True)
            random_genotype(torch.Generator().manual_seed(RANDOM_CELL_SEED)).save(path)
        return str(path)
    return ZOO.get(name, name)


def run_one(task: str, backbone: str, binary: bool, seed: int, work: Path, quick: bool) -> dict[str, Any]:
    """One run (or its summary, when it already finished); returns the record of the table."""
    import torch

    torch.set_num_threads(1)
    run_dir = work / task / f"{backbone}-{'1bit' if binary else 'real'}-s{seed}"
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        overrides = [
            *BUDGET[task],
            *(QUICK[task] if quick else []),
            f"model.backbone={backbone_source(backbone, work)}",
            f"model.stem={STEMS[task]}",
            f"seed={seed}",
            "device=cpu",
            "num_threads=1",
        ]
        if task == "detect":
            from binas.config.detect import load_detect_config
            from binas.workflows.detect import detect

            overrides.append(f"train.binary={'true' if binary else 'false'}")
            detect(load_detect_config(None, overrides), run_dir, progress=False)
        else:
            from binas.config.reid import load_reid_config
            from binas.workflows.reid import train_reid

            overrides.append(f"model.binary={'true' if binary else 'false'}")
            train_reid(load_reid_config(None, overrides), run_dir, progress=False)
    summary = json.loads(summary_path.read_text())
    profile = summary["backbone"] if task == "detect" else summary["backbone_profile"]
    record = {
        "task": task,
        "backbone": backbone,
        "precision": "1-bit" if binary else "real",
        "seed": seed,
        "params": profile["params"],
        "ops": profile["ops"],
        "memory_mbit": profile["memory_mbit"],
        "train_cpu_seconds": summary.get("train_cpu_seconds", summary.get("cpu_seconds")),
        "run_dir": str(run_dir),
    }
    if task == "detect":
        record.update(map=summary["map"], map50=summary["map50"])
    else:
        record.update(rank1=summary["rank1"], mAP=summary["mAP"])
    return record


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of each (task, backbone, precision)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["task"], r["backbone"], r["precision"]), []).append(r)
    rows = []
    for (task, backbone, precision), runs in groups.items():
        metrics = ("map", "map50") if task == "detect" else ("rank1", "mAP")
        row: dict[str, Any] = {"task": task, "backbone": backbone, "precision": precision, "seeds": len(runs)}
        for key in (*metrics, "train_cpu_seconds"):
            row[key], row[f"{key}_std"] = _mean_std([float(r[key]) for r in runs])
        row.update({k: runs[0][k] for k in ("params", "ops", "memory_mbit")})
        rows.append(row)
    order = {b: i for i, b in enumerate(BACKBONES)}
    return sorted(rows, key=lambda r: (r["task"], r["precision"] != "1-bit", order.get(r["backbone"], 99)))


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Measured {result['date']}, `{result['command']}` ({len(result['seeds'])} seeds, mean +- std; "
        f"{result['machine']}). Budget per run: "
        + "; ".join(f"{t}: " + ", ".join(b) for t, b in result["budget"].items())
        + ".",
        "",
    ]
    for task, (m1, m2) in (("detect", ("map", "map50")), ("reid", ("rank1", "mAP"))):
        rows = [r for r in result["summary"] if r["task"] == task]
        if not rows:
            continue
        title = "digits-detection (COCO mAP)" if task == "detect" else "digits-reid (stand-in, not person re-ID)"
        lines += [
            f"**{title}**",
            "",
            f"| backbone | precision | {m1} | {m2} | params | OPs (M) | Mbit | train CPU s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['backbone']} | {r['precision']} | {r[m1]:.3f} +- {r[m1 + '_std']:.3f} | "
                f"{r[m2]:.3f} +- {r[m2 + '_std']:.3f} | {r['params']:,} | {r['ops'] / 1e6:.2f} | "
                f"{r['memory_mbit']:.3f} | {r['train_cpu_seconds']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def update_readme(result: dict[str, Any], readme: Path = README) -> None:
    write_block(readme, README_BEGIN, README_END, markdown(result))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["detect", "reid"], choices=["detect", "reid"])
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    p.add_argument("--precisions", nargs="+", default=["1-bit", "real"], choices=["1-bit", "real"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (one thread each)")
    p.add_argument("--work-dir", type=Path, default=Path("runs/transfer"))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--quick", action="store_true", help="a tiny budget (for tests)")
    p.add_argument("--readme", action="store_true", help="rewrite README.md's block from --out (no runs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.readme:
        result = json.loads(args.out.read_text())
        update_readme(result)
        return result
    started = time.perf_counter()
    jobs = [
        (task, backbone, precision == "1-bit", seed, args.work_dir, args.quick)
        for task in args.tasks
        for backbone in args.backbones
        for precision in args.precisions
        for seed in args.seeds
    ]
    backbone_source("random", args.work_dir)  # written once, before the workers read it
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            records = list(pool.map(run_one, *zip(*jobs, strict=True)))
    else:
        records = [run_one(*job) for job in jobs]
    import platform

    budget = {t: BUDGET[t] + (QUICK[t] if args.quick else []) for t in args.tasks}
    result = {
        "benchmark": "transfer",
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["python benchmarks/transfer.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {args.jobs} run(s) at a time, 1 thread each",
        "seeds": args.seeds,
        "budget": budget,
        "stems": STEMS,
        "random_cell": json.loads((args.work_dir / "random_cell.json").read_text()),
        "summary": aggregate(records),
        "runs": records,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
