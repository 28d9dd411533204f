"""Fault injection in full: kill real `binas` processes at chosen moments, resume them, compare with runs
that were never interrupted; signals; two writers on one run directory; a torchrun rank that dies.

    python benchmarks/faults.py            # every search method and two-step training (~10 min, 2 cores)
    python benchmarks/faults.py --quick    # darts, dcp-nas, cp-nas and training

Kill moments per run: `first-epoch` (before any checkpoint), `after-checkpoint` (just after the first
`checkpoint.pt` appears), `during-write` (while a checkpoint's temporary file exists; when the write is
too fast to catch, the kill lands just after it), `after-last-epoch` (the run wrote its results). After
each kill, `--resume` must end with the genotype (search) or weights (training) and the final checkpoint
of the uninterrupted run, bit for bit. Writes benchmarks/results/faults.json: cases tried / passed, runs
killed / resumed identical / lost, tracebacks and hangs; the fast lane is tests/reliability/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "faults.json"
TINY = (
    "--device cpu --quiet --set num_threads=1 --set data.image_size=8 --set data.max_train_samples=96 "
    "--set space.channels=4 --set space.layers=3 --set search.batch_size=32"
).split()
SAMPLING = "--set search.options.rounds=1 --set search.options.train_steps=1 --set search.options.max_samples=4".split()
#: Method -> extra flags keeping its whole schedule to a few seconds.
METHODS: dict[str, list[str]] = {
    "darts": ["--epochs", "3"],
    "pc-darts": ["--epochs", "3", "--set", "search.options.partial_channels=2"],
    "random": ["--epochs", "3", "--set", "search.options.candidates_per_epoch=2"],
    "dcp-nas": ["--epochs", "2"],
    "cp-nas": SAMPLING,
    "bnas": SAMPLING,
    "ddpnas": ["--epochs", "4", "--set", "search.options.rounds_per_prune=1"],
}
QUICK_METHODS = ("darts", "dcp-nas", "cp-nas")
TRAIN = (
    "train darts-v2 --device cpu --quiet --epochs 2 --channels 4 --layers 3 --batch-size 32 "
    "--set num_threads=1 --set data.image_size=8 --set data.max_train_samples=96 --set train.optim.warmup_epochs=0"
).split()
PARTS = ("search", "train", "signals", "torchrun")
MOMENTS = ("first-epoch", "after-checkpoint", "during-write", "after-last-epoch")
HANG_SECONDS = 180.0
POLL = 0.002


def binas(*argv: str) -> list[str]:
    return [sys.executable, "-m", "binas", *argv]


def finished(proc: subprocess.Popen, timeout: float = HANG_SECONDS) -> tuple[int | None, str]:
    """(exit code or None if it hung, stderr)."""
    try:
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        proc.kill()
        return None, proc.communicate()[1]


def start(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_at(proc: subprocess.Popen, run: Path, moment: str, result_file: str) -> bool:
    """SIGKILL `proc` at `moment`; False if it finished first."""
    started: float | None = None  # when the run's config.yaml appeared (the run began)
    while proc.poll() is None:
        ckpt, tmp = run / "checkpoint.pt", list(run.glob(".checkpoint.pt.*.tmp")) if run.is_dir() else []
        if started is None and (run / "config.yaml").exists():
            started = time.perf_counter()
        hit = {
            "first-epoch": started is not None and time.perf_counter() - started > 0.3 and not ckpt.exists(),
            "after-checkpoint": ckpt.exists(),
            "during-write": bool(tmp) or ckpt.exists(),
            "after-last-epoch": (run / result_file).exists(),
        }[moment]
        if hit:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(POLL)
    return False


def tensors(path: Path) -> dict[str, Any]:
    payload = torch.load(path, map_location="cpu", weights_only=True)["payload"]
    flat: dict[str, Any] = {}

    def walk(obj: Any, key: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k not in ("elapsed", "elapsed_cpu", "record") and not str(k).endswith("seconds"):  # timings vary
                    walk(v, f"{key}/{k}")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(v, f"{key}/{i}")
        else:
            flat[key] = obj

    walk(payload, "")
    return flat


def same(a: Path, b: Path) -> bool:
    x, y = tensors(a), tensors(b)
    if x.keys() != y.keys():
        return False
    for k in x:
        u, v = x[k], y[k]
        if isinstance(u, torch.Tensor):
            if not (
                isinstance(v, torch.Tensor) and u.shape == v.shape and torch.equal(u.nan_to_num(-9), v.nan_to_num(-9))
            ):
                return False
        elif u != v and not (isinstance(u, float) and u != u and v != v):
            return False
    return True


def kill_and_resume(
    name: str, argv: list[str], resume: list[str], reference: Path, work: Path, result_file: str, compare: str
) -> list[dict[str, Any]]:
    rows = []
    for moment in MOMENTS:
        run = work / f"{name}-{moment}"
        proc = start(binas(*argv, "--out", str(run)))
        killed = kill_at(proc, run, moment, result_file)
        if not killed:
            finished(proc)
        code, err = finished(start(binas(*resume, str(run))))
        identical = code == 0 and (run / compare).exists() and same(run / "checkpoint.pt", reference / "checkpoint.pt")
        if compare.endswith(".json") and identical:
            identical = json.loads((run / compare).read_text()) == json.loads((reference / compare).read_text())
        rows.append(
            {
                "case": f"{name} killed {moment}",
                "killed": killed,
                "resume_exit": code,
                "identical": identical,
                "traceback": "Traceback" in err,
                "hang": code is None,
                "stale_tmp_left": bool(list(run.glob(".*.tmp"))),
            }
        )
        print(f"{rows[-1]['case']:<40} killed={killed} resume exit={code} identical={identical}", flush=True)
    return rows


def search_cases(method: str, work: Path) -> list[dict[str, Any]]:
    argv = ["search", "--method", method, *METHODS[method], *TINY]
    reference = work / f"{method}-reference"
    code, err = finished(start(binas(*argv, "--out", str(reference))))
    if code != 0:
        return [{"case": f"{method} reference", "passed": False, "error": err.strip().splitlines()[-1:]}]
    return kill_and_resume(
        method, argv, ["search", "--quiet", "--resume"], reference, work, "search_summary.json", "genotype.json"
    )


def train_cases(work: Path) -> list[dict[str, Any]]:
    reference = work / "train-reference"
    code, err = finished(start(binas(*TRAIN, "--out", str(reference))))
    if code != 0:
        return [{"case": "train reference", "passed": False, "error": err.strip().splitlines()[-1:]}]
    return kill_and_resume(
        "train", TRAIN, ["train", "--quiet", "--resume"], reference, work, "summary.json", "model.pt"
    )


def signal_cases(work: Path) -> list[dict[str, Any]]:
    rows = []
    argv = ["search", "--method", "darts", "--epochs", "4", *TINY]
    for sig, expect in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        run = work / f"signal-{sig.name}"
        proc = start(binas(*argv, "--out", str(run)))
        while proc.poll() is None and not (run / "checkpoint.pt").exists():
            time.sleep(POLL)
        proc.send_signal(sig)
        code, err = finished(proc)
        resumed, rerr = finished(start(binas("search", "--quiet", "--resume", str(run))))
        said = "--resume" in err
        rows.append(
            {
                "case": f"{sig.name} after a checkpoint",
                "exit": code,
                "expected_exit": expect,
                "said_how_to_resume": said,
                "resume_exit": resumed,
                "passed": code == expect and said and resumed == 0,
                "traceback": "Traceback" in err + rerr,
                "hang": code is None,
            }
        )
    run = work / "two-writers"
    first = start(binas(*argv, "--out", str(run)))
    while first.poll() is None and not (run / "config.yaml").exists():
        time.sleep(POLL)
    code, err = finished(start(binas(*argv, "--out", str(run))))
    finished(first)
    line = [x for x in err.splitlines() if x.strip()]
    rows.append(
        {
            "case": "two processes on one --out",
            "exit": code,
            "message": line,
            "passed": code == 2 and len(line) == 1 and ("in use" in line[0] or "already holds a run" in line[0]),
            "traceback": "Traceback" in err,
            "hang": code is None,
        }
    )
    return rows


def dead_rank_case(work: Path) -> dict[str, Any]:
    run = work / "torchrun-dead-rank"
    argv = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29533",
        "-m",
        "binas",
        "search",
        "--method",
        "darts",
        "--epochs",
        "20",
        *TINY,
        "--out",
        str(run),
    ]
    proc = start(argv)
    while proc.poll() is None and not (run / "checkpoint.pt").exists():
        time.sleep(0.05)
    victim = None
    for pid in map(int, subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()):
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if b"RANK=1" in env:
            victim = pid
    t0 = time.perf_counter()
    if victim is not None:
        os.kill(victim, signal.SIGKILL)
    code, err = finished(proc)
    return {
        "case": "torchrun: rank 1 killed",
        "killed_rank": victim is not None,
        "exit": code,
        "seconds_to_exit": round(time.perf_counter() - t0, 1),
        "hang": code is None,
        "passed": victim is not None and code not in (0, None),
        "traceback_lines": err.count("Traceback"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three methods and training")
    parser.add_argument("--work-dir", default="runs/faults", help="run directories (default runs/faults)")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run these parts and replace their rows in --out")
    args = parser.parse_args(argv)
    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    parts = set(args.only or PARTS)
    rows: list[dict[str, Any]] = []
    if "search" in parts:
        for method in QUICK_METHODS if args.quick else METHODS:
            rows += search_cases(method, work)
    if "train" in parts:
        rows += train_cases(work)
    if "signals" in parts:
        rows += signal_cases(work)
    if "torchrun" in parts:
        rows.append(dead_rank_case(work))
    seconds = time.perf_counter() - t0
    if args.only and Path(args.out).exists():  # keep the other parts' rows of the last full run
        earlier = json.loads(Path(args.out).read_text())
        fresh = {r["case"] for r in rows}
        rows = [r for r in earlier["rows"] if r["case"] not in fresh] + rows
        seconds += float(earlier.get("seconds", 0.0))
    for row in rows:
        if "identical" in row:
            row["passed"] = row["identical"] and not row["traceback"] and not row["stale_tmp_left"]
    killed = [r for r in rows if r.get("killed")]
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(seconds, 1),
        "cases": len(rows),
        "passed": sum(bool(r.get("passed")) for r in rows),
        "runs_killed": len(killed),
        "resumed_identical": sum(bool(r.get("identical")) for r in killed),
        "lost": sum(not r.get("identical") for r in killed),
        "tracebacks": sum(bool(r.get("traceback")) for r in rows),
        "hangs": sum(bool(r.get("hang")) for r in rows),
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2))
    return 0 if report["passed"] == report["cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
