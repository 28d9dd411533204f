"""The small-scale reproduction table: every search method on one budget, retrained with one recipe, 3 seeds.

For each row of `ROWS` and each seed, `binas run` (search -> retrain the found cell as a 1-bit network ->
evaluate) runs in its own process with one torch thread; `--jobs` rows run side by side. Every run keeps
its run directory under `--work-dir`, so an interrupted reproduction resumes where it stopped (finished
runs are read back, not redone). The script writes

    OUT.json   every run's summary plus the per-row aggregate, the budget, the machine and the date
    OUT.md     the table: top-1 mean +- std over seeds, search and train CPU seconds, params, OPs, Mbit
    OUT.png    top-1 against search CPU seconds (log scale), one point per row with its seed spread

The budget. All rows share the data, the supernet (`space`), the search batch and the retraining recipe
(`train`). Epoch-based methods (random, DARTS, PC-DARTS, DCP-NAS and its ablations) run `--search-epochs`
epochs; for DCP-NAS an epoch is a Parent round plus a Child round. CP-NAS / BNAS (sampled paths, T rounds
of progressive abandoning) and DDPNAS (sampled single paths, pruning until one op per edge is left) run
their whole schedule, which is what defines them; their epochs train one sampled path, not the supernet.
The table reports the CPU seconds each row really spent (wall seconds are in the JSON), so the cost side of
the comparison is measured, not assumed; the plot puts accuracy against it.

    python benchmarks/reproduce.py                 # digits, the default budget (about an hour on 2 cores)
    python benchmarks/reproduce.py --quick         # minutes: tiny budget, for a smoke test
    python benchmarks/reproduce.py --data-dir ~/data/cifar-10-batches-py   # CIFAR-10 instead of digits
    python benchmarks/reproduce.py --readme        # rewrite README.md's results block from OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "reproduce"
DEFAULT_WORK = Path("runs") / "reproduce"
README = HERE.parent / "README.md"
README_BEGIN, README_END = "<!-- reproduce:begin -->", "<!-- reproduce:end -->"


@dataclass(frozen=True)
class Row:
    """One line of the table: a search method with its options.

    `epoch_based` rows run the common `--search-epochs`; the others run their own schedule (see the module
    docstring). `overrides` are dotted config overrides, as `binas run --set` takes them.
    """

    label: str
    method: str
    overrides: tuple[str, ...] = ()
    epoch_based: bool = True
    paper: str = ""


ROWS: tuple[Row, ...] = (
    Row("random", "random", ("search.binary=true",), paper="random search, weight-sharing ranking"),
    Row("darts", "darts", paper="DARTS 1st order (Liu et al. 2019), searched real, retrained 1-bit"),
    Row("pc-darts", "pc-darts", paper="PC-DARTS (Xu et al. 2020), searched real, retrained 1-bit"),
    Row("bnas", "bnas", epoch_based=False, paper="BNAS-style CP indicator without a Parent (Chen et al. 2020)"),
    Row("cp-nas", "cp-nas", epoch_based=False, paper="CP-NAS (Zhuo et al., IJCAI 2020)"),
    Row("ddpnas", "ddpnas", ("search.binary=true",), epoch_based=False, paper="DDPNAS (Zheng et al.), 1-bit"),
    Row("dcp-nas", "dcp-nas", paper="DCP-NAS (Li et al., IJCV 2023)"),
    Row("dcp-nas no tangent", "dcp-nas", ("search.options.use_tangent=false",), paper="ablation: lambda = 0"),
    Row("dcp-nas no reconstruction", "dcp-nas", ("search.options.use_reconstruction=false",),
        paper="ablation: mu = 0"),
    Row("dcp-nas exact Hessian", "dcp-nas", ("search.options.hessian=exact",),
        paper="ablation: exact Hessian-vector products instead of the GGN"),
    Row("dcp-nas no decoupled", "dcp-nas", ("search.options.use_decoupled=false",),
        paper="ablation: no decoupled optimization"),
    Row("dcp-nas decoupled eta=1", "dcp-nas", ("search.options.backtrack_eta=1.0",),
        paper="decoupled optimization with backtrack step eta = 1 (the default eta = eta1*eta2 is ~1e-8 of alpha)"),
)


@dataclass(frozen=True)
class Budget:
    """What every row shares: data, supernet, search length, retraining recipe."""

    name: str
    search_epochs: int
    common: tuple[str, ...]
    schedule: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def overrides(self, row: Row, seed: int) -> list[str]:
        """The `--set` list of one run."""
        own = [f"search.epochs={self.search_epochs}"] if row.epoch_based else []
        return [*self.common, *own, *self.schedule.get(row.method, ()), *row.overrides, f"seed={seed}"]


#: The default: digits at their native 8x8; a C=8, 5-cell supernet; the retrained 1-bit network C=16, 5
#: cells, two-step 6 + 6 epochs. About an hour for all rows and 3 seeds with 2 jobs on 2 cores.
DEFAULT_BUDGET = Budget(
    "default",
    search_epochs=4,
    common=("data.image_size=8", "space.channels=8", "space.layers=5", "search.batch_size=64",
            "train.epochs=6", "train.batch_size=64", "train.net.channels=16", "train.net.layers=5"),
)
#: --quick: a few minutes for every row (tiny networks, 256 training images, short schedules).
QUICK_BUDGET = Budget(
    "quick",
    search_epochs=1,
    common=("data.image_size=8", "data.max_train_samples=256", "space.channels=4", "space.layers=3",
            "search.batch_size=64", "train.epochs=1", "train.batch_size=64", "train.net.channels=8",
            "train.net.layers=3"),
    schedule={"cp-nas": ("search.options.rounds=1", "search.options.max_samples=6", "search.options.eval_batches=1"),
              "bnas": ("search.options.rounds=1", "search.options.max_samples=6", "search.options.eval_batches=1"),
              "ddpnas": ("search.options.max_epochs=6", "search.options.eval_batches=1"),
              "random": ("search.options.candidates_per_epoch=2", "search.options.eval_batches=1")},
)


def run_one(label: str, method: str, overrides: list[str], run_dir: str, threads: int) -> dict[str, Any]:
    """One `binas run` in this (worker) process; returns its summary. Reads it back if already finished."""
    from binas.engine.runtime import setup_runtime

    summary_path = Path(run_dir) / "summary.json"
    if summary_path.exists():
        return json.loads(summary_path.read_text())
    import torch

    from binas import pipeline
    from binas.config.io import load_config
    from binas.config.schema import RunConfig

    torch.set_num_threads(threads)
    cfg = load_config(RunConfig, None, [f"search.method={method}", f"num_threads={threads}", *overrides])
    partial = Path(run_dir)
    if partial.exists():  # an interrupted run: start it again from scratch (its search may have moved on)
        import shutil

        shutil.rmtree(partial)
    runtime = setup_runtime(cfg.device, cfg.seed, num_threads=threads)
    result = pipeline.run(cfg, run_dir, plots=False, progress=False, runtime=runtime)
    return result.summary


def _outcomes(jobs: dict[Any, tuple], workers: int) -> Iterator[tuple[Any, dict[str, Any] | Exception]]:
    """(key, summary or the exception) of `run_one(*args)` for each job, as they finish.

    `workers` > 1: spawned processes (each its own torch threads and peak memory); 1: in this process,
    one after another (what the tests use)."""
    if workers == 1:
        for key, args in jobs.items():
            try:
                yield key, run_one(*args)
            except Exception as exc:  # noqa: BLE001 - reported by the caller
                yield key, exc
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_one, *args): key for key, args in jobs.items()}
        for future in as_completed(futures):
            exc = future.exception()
            yield futures[future], exc if exc is not None else future.result()


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(rows: list[Row], runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per row: top-1 mean and std over seeds, mean seconds, and the complexity of each seed's network."""
    table = []
    for row in rows:
        done = runs.get(row.label, [])
        if not done:
            continue
        top1 = [float(r["top1"]) for r in done]  # summaries hold top-1 in %
        mean, std = _mean_std(top1)
        table.append({
            "label": row.label, "method": row.method, "paper": row.paper, "seeds": len(done),
            "top1_mean": mean, "top1_std": std, "top1_all": top1,
            "search_seconds": statistics.fmean(r["search_seconds"] for r in done),
            "train_seconds": statistics.fmean(r["train_seconds"] for r in done),
            "search_cpu_seconds": statistics.fmean(r["search_cpu_seconds"] for r in done),
            "train_cpu_seconds": statistics.fmean(r["train_cpu_seconds"] for r in done),
            "search_epochs": statistics.fmean(r["search_epochs"] for r in done),
            "params": statistics.fmean(r["params"] for r in done),
            "ops": statistics.fmean(r["ops"] for r in done),
            "memory_mbit": statistics.fmean(r["memory_mbit"] for r in done),
            "archids": [r["archid"] for r in done],
        })
    return table


def markdown(result: dict[str, Any]) -> str:
    """The results table and its caption, as README.md shows it."""
    m = result["machine"]
    lines = [
        f"Budget `{result['budget']['name']}` ({result['data']}), {len(result['seeds'])} seeds, "
        f"run {result['finished'][:10]} on {m['cpus']} CPU cores ({m['processor']}), {result['jobs']} runs in "
        f"parallel with {result['threads']} thread each; torch {m['torch']}. Top-1 of the retrained 1-bit "
        "network on the test split. Cost is CPU seconds of the run's process (one thread, so about wall seconds on a "
        "quiet machine; unlike wall time, it is barely disturbed by the runs beside it), mean over seeds. "
        "Params/OPs/Mbit of the retrained network (mean over seeds). Produced by `python benchmarks/reproduce.py`.",
        "",
        "| method | top-1 % (mean ± std) | search CPU s | train CPU s | search epochs | params (M) | OPs (M) | Mbit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["table"]:
        lines.append(
            f"| {r['label']} | {r['top1_mean']:.2f} ± {r['top1_std']:.2f} | {r['search_cpu_seconds']:.0f} | "
            f"{r['train_cpu_seconds']:.0f} | {r['search_epochs']:.0f} | {r['params'] / 1e6:.3f} | "
            f"{r['ops'] / 1e6:.2f} | {r['memory_mbit']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """Top-1 (mean, with the seeds' min-max as the error bar) against search CPU seconds, log x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    markers = iter("osDv^<>phP*X")
    for r in result["table"]:
        lo, hi = min(r["top1_all"]), max(r["top1_all"])
        ax.errorbar(r["search_cpu_seconds"], r["top1_mean"], yerr=[[r["top1_mean"] - lo], [hi - r["top1_mean"]]],
                    fmt=next(markers, "o"), capsize=3, label=r["label"], alpha=0.85)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # labels never overlap the points
    ax.set_xscale("log")
    ax.set_xlabel("search CPU seconds per run (log scale)")
    ax.set_ylabel("top-1 % of the retrained 1-bit network")
    ax.set_title(f"binas reproduction on {result['data']} ({len(result['seeds'])} seeds, {result['finished'][:10]})")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def update_readme(out: Path, readme: Path = README) -> None:
    """Replace the block between the reproduce markers in README.md with OUT.md and the plot's link."""
    result = _read_result(out.with_suffix(".json"))
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise SystemExit(f"{readme} has no {README_BEGIN} ... {README_END} block to fill")
    rel = os.path.relpath(out.with_suffix(".png"), readme.parent)
    block = f"{README_BEGIN}\n{markdown(result)}\n![accuracy vs search cost]({rel})\n{README_END}"
    head, rest = text.split(README_BEGIN, 1)
    readme.write_text(head + block + rest.split(README_END, 1)[1])
    print(f"updated {readme}")


def _read_result(path: Path) -> dict[str, Any]:
    """A finished reproduction's JSON; a missing or broken file is a one-line error."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{path} not found: run benchmarks/reproduce.py first") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"cannot read {path}: {exc}") from None


def _machine() -> dict[str, Any]:
    import torch

    processor = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "processor": processor, "torch": torch.__version__,
            "python": platform.python_version(), "loadavg_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget, a few minutes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", metavar="LABEL", help="run these rows only (labels of the table)")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (one torch thread each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--data-dir", type=Path, help="CIFAR-10 (python batches) instead of the bundled digits")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override for every run (repeatable)")
    parser.add_argument("--work-dir", type=Path, help=f"run directories (default {DEFAULT_WORK}/<budget>)")
    parser.add_argument("--out", type=Path, help=f"results stem (default {DEFAULT_OUT}[-quick])")
    parser.add_argument("--redraw", action="store_true", help="only redraw OUT.md and OUT.png from OUT.json")
    parser.add_argument("--readme", action="store_true", help="--redraw, then rewrite README.md's table block")
    args = parser.parse_args(argv)

    budget = QUICK_BUDGET if args.quick else DEFAULT_BUDGET
    out = args.out or (DEFAULT_OUT.with_name(DEFAULT_OUT.name + "-quick") if args.quick else DEFAULT_OUT)
    if args.redraw or args.readme:
        result = _read_result(out.with_suffix(".json"))
        out.with_suffix(".md").write_text(markdown(result))
        plot(result, out.with_suffix(".png"))
        if args.readme:
            update_readme(out)
        return 0
    rows = [r for r in ROWS if not args.only or r.label in args.only]
    unknown = set(args.only or ()) - {r.label for r in ROWS}
    if unknown:
        parser.error(f"unknown row(s) {sorted(unknown)}; rows: {[r.label for r in ROWS]}")
    data: list[str] = []
    dataset = "digits"
    if args.data_dir is not None:
        if not args.data_dir.exists():
            parser.error(f"--data-dir {args.data_dir} does not exist")
        data = ["data.name=cifar10", f"data.data_dir={args.data_dir}", "data.image_size=32"]
        dataset = "cifar10"
    work = args.work_dir or DEFAULT_WORK / f"{budget.name}-{dataset}"
    tasks = [(row, seed) for row in rows for seed in args.seeds]
    machine = _machine()
    started = time.time()
    runs: dict[str, list[dict[str, Any]]] = {}
    print(f"{len(tasks)} runs ({len(rows)} rows x {len(args.seeds)} seeds), {args.jobs} at a time -> {work}")
    jobs = {(row, seed): (row.label, row.method, budget.overrides(row, seed) + data + list(args.overrides),
                          str(work / row.label.replace(" ", "-") / f"seed{seed}"), args.threads)
            for row, seed in tasks}
    for n, ((row, seed), outcome) in enumerate(_outcomes(jobs, args.jobs), 1):
        if isinstance(outcome, BaseException):  # one failed run is reported, the others still count
            print(f"[{n}/{len(tasks)}] {row.label} seed {seed}: FAILED: {outcome}", file=sys.stderr)
            continue
        runs.setdefault(row.label, []).append(outcome)
        print(f"[{n}/{len(tasks)}] {row.label} seed {seed}: top-1 {outcome['top1']:.2f}%, "
              f"search {outcome['search_cpu_seconds']:.0f} CPU s, train {outcome['train_cpu_seconds']:.0f} CPU s "
              f"({time.time() - started:.0f} s elapsed)", flush=True)
    for summaries in runs.values():
        summaries.sort(key=lambda s: s["run_dir"])
    result = {
        "budget": {"name": budget.name, "search_epochs": budget.search_epochs, "common": list(budget.common),
                   "schedule": {k: list(v) for k, v in budget.schedule.items()}, "extra": data + args.overrides},
        "data": dataset, "seeds": args.seeds, "jobs": args.jobs, "threads": args.threads,
        "machine": machine | {"loadavg_end": os.getloadavg()},
        "wall_seconds": round(time.time() - started, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": [{"label": r.label, "method": r.method, "overrides": list(r.overrides), "epoch_based": r.epoch_based,
                  "paper": r.paper} for r in rows],
        "table": aggregate(rows, runs),
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    plot(result, out.with_suffix(".png"))
    print(markdown(result))
    print(f"written {out}.json/.md/.png in {result['wall_seconds']:.0f} s")
    failed = len(tasks) - sum(len(v) for v in runs.values())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
