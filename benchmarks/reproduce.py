"""The small-scale reproduction table: every search method on one budget, retrained with one recipe, 5 paired
seeds.

For each row of `ROWS` and each seed, `binas run` (search -> retrain the found cell as a 1-bit network ->
evaluate) runs in its own process with one torch thread; `--jobs` runs go side by side, the longest
(by the rows' `cost` estimates) submitted first so that the last minutes are not spent on one long run.
Every run keeps its run directory under `--work-dir`, so an interrupted reproduction resumes where it
stopped (finished runs are read back, not redone; a finished run whose saved config differs from the one
this call would run is reported as failed, never mixed in). The script writes

    OUT.json   every run's summary, the per-row statistics, the budget, the machine and the date
    OUT.md     the table: top-1 mean ± 95 % interval over the seeds, the paired difference of every row to
               "darts 1-bit" and to "dcp-nas" (± 95 % interval, bold when outside the seed noise), search
               and train CPU seconds, params, OPs, Mbit, a legend and which differences exceed the noise
    OUT.png    top-1 mean with its 95 % interval against search CPU seconds (log scale), one point per row

The statistics. Every row runs the same seeds (default 0..4), so rows are paired: seed s of every row
searches on the same train/validation split (drawn from the seed) and starts from the same random
streams. Per row: the mean top-1 and the 95 % Student-t interval mean ± t(0.975, n-1) sd / sqrt(n) over
its n seeds. Per row and reference row (`REFERENCES`: 1-bit DARTS and full DCP-NAS): the per-seed
differences d_s = top1_s(row) - top1_s(reference) over the seeds both have, and their mean ±
t(0.975, n-1) sd(d) / sqrt(n). A difference is "outside seed noise" when that interval excludes 0;
pairing removes what a seed does to both rows (e.g. an easy split), so it can separate rows whose
unpaired intervals overlap.

The budget (`DEFAULT_BUDGET`, name `strict`). All rows share the data, the supernet (`space`), the search
batch and the retraining recipe (`train`). Epoch-based methods (random, DARTS, PC-DARTS, DCP-NAS and its
ablations) run `search_epochs` epochs; for DCP-NAS an epoch is a Parent round plus a Child round.
CP-NAS / BNAS (sampled paths, T rounds of progressive abandoning) and DDPNAS (sampled single paths,
pruned) run their own default schedule, which is what defines them; their epochs train one sampled path,
not the supernet. The table reports the CPU seconds each row really spent (wall seconds are in the JSON).

Why this budget. The previous default (8x8 digits, all 1438 training images, `released` policy, retrained
C=16, 5 cells, 6 + 6 epochs) put every row at 95-97 % top-1, within about 1 point of each other and inside
the seed noise: under `released` only the point-wise convs see binary activations, and even a cell of
nothing but pooling scores 96.8 % (the real stem and classifier do the work). The `strict` policy (every
cell conv 1-bit in weights and activations, the book's network; `space.policy`, which the 1-bit supernets of
the search share with the retrained network) leaves room: measured in a pilot (one thread, on the shared
2-core machine at load 2-4, src of 2026-11-29 while the DCP-NAS defaults were changing), the retrained top-1
of genotypes found earlier spans 40-93 % depending on how many binary convs the cell holds, so rows can
differ, and whether a search learns to avoid ops that do not survive binarization shows in the accuracy. The
retraining stays below its ceiling (train accuracy 40-90 %), so a better cell can still score higher. Pilot:
`binas train GENOTYPE --set space.policy=strict --set data.image_size=8 --set data.max_train_samples=N --set
train.epochs=E ...` on genotypes of benchmarks/results/reproduce.json (2026-11-24), and `binas run` as
marked:

    genotype (earlier run)        data   C/cells  epochs  batch   top-1   train CPU s
    darts seed 0 (convs + pools)  1438   16/5     6+6     64      88.6    73
    dcp-nas seed 0 (all pooling)  1438   16/5     6+6     64      90.8    17
    darts seed 0                  1000   16/5     6+6     64      79.7    48
    dcp-nas seed 0                1000   16/5     6+6     64      92.8    13
    darts 1-bit pilot (convs)     1000   16/5     4+4     64      56.5    33   (binas run, search 105 CPU s)
    dcp-nas pilot (dil/sep convs) 1000   16/5     6+6     64      39.6    62   (binas run, search 115 CPU s)
    the same genotype             1000   16/5     5+5     32      46.5    67

and `binas run --method dcp-nas` with this budget's search (1000 images, C=8, 4 cells, 2 epochs, strict)
spent 115 CPU s searching (61 + 54 s per epoch; the 1-bit `darts 1-bit` search 35 s per epoch at 5 cells).
Batch 32 in retraining gives twice the optimizer steps per image of batch 64 for about the same CPU time (on
the hardest cell 5 + 5 epochs at batch 32, 160 steps per step, scored 46.5 % against 39.6 % for 6 + 6 at
batch 64, 96 steps), so the retraining is that piloted recipe (C=16, 5 cells, batch 32) at 4 + 4 epochs; the
search runs a 4-cell supernet (a shallower proxy, as DARTS searches 8 cells and evaluates 20) for 2 epochs
on 1000 training images (500 + 500): that is what pays for 13 rows x 5 seeds in an hour. Expect cells of
mostly binary convs near 40-60 % and cells of mostly pooling / skip near 90 %, so a row's mean says how
often its search avoids binary convs that do not train in this budget; the seed spread of a row is wide, which
is what the paired differences are for. Use a smaller budget before fewer seeds: with fewer than 5 seeds the t intervals
widen fast (t(0.975, n-1) = 2.78 at n = 5, 4.30 at n = 3).

The estimate: 13 rows x 5 seeds = 65 runs, about 7,100 CPU s in all (the sum of the rows' `cost`,
printed at the start), i.e. about an hour with `--jobs 2` on 2 cores. How: the measured pilot runs
above (DCP-NAS 115 CPU s of search; 1-bit DARTS 35 s per 5-cell epoch; retraining 13-67 s at 5 + 5
epochs, x 0.8 for 4 + 4), and the other rows scaled from the previous budget's measured per-run CPU s
(benchmarks/results/reproduce.json of 2026-11-24: random 18, DARTS 58, PC-DARTS 41, BNAS 80, CP-NAS 130,
DDPNAS 75 search CPU s) by the data (x 0.7: 500 instead of 719 images per split), the supernet depth
(x 0.8: 4 cells instead of 5), the search epochs (x 0.5 for epoch-based rows: 2 instead of 4) and x 1.2-2
for the strict 1-bit supernets. The pilot ran on a loaded machine, so a quiet one should be faster.

    python benchmarks/reproduce.py --jobs 2        # digits, the default budget: 13 rows x 5 seeds, ~1 h on 2 cores
    python benchmarks/reproduce.py --quick         # minutes: tiny budget, for a smoke test
    python benchmarks/reproduce.py --only dcp-nas "darts 1-bit"   # some rows (labels of the table)
    python benchmarks/reproduce.py --data-dir ~/data/cifar-10-batches-py   # CIFAR-10 instead of digits
    python benchmarks/reproduce.py --readme        # rewrite README.md's results block from OUT.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from readme_block import write_block

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "reproduce"
DEFAULT_WORK = Path("runs") / "reproduce"
README = HERE.parent / "README.md"
README_BEGIN, README_END = "<!-- reproduce:begin -->", "<!-- reproduce:end -->"
#: Two-sided confidence of every interval (Student t over the seeds).
CONFIDENCE = 0.95
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
#: Config keys that may differ between a finished run and this call without making it another run.
RESUME_IGNORED = frozenset({"num_threads", "device"})


@dataclass(frozen=True)
class Row:
    """One line of the table: a search method with its options.

    `epoch_based` rows run the budget's `search_epochs`; the others run their own schedule (see the module
    docstring). `overrides` are dotted config overrides, as `binas run --set` takes them. `cost` is the
    estimated CPU seconds of one run (search + retraining) at `DEFAULT_BUDGET`: it orders the jobs (longest
    first) and gives the estimate printed at the start.
    """

    label: str
    method: str
    overrides: tuple[str, ...] = ()
    epoch_based: bool = True
    paper: str = ""
    cost: float = 100.0

    @property
    def slug(self) -> str:
        """The row's folder name under the work directory."""
        return re.sub(r"[^a-z0-9]+", "-", self.label.lower()).strip("-")


BINARY = ("search.binary=true",)
ROWS: tuple[Row, ...] = (
    Row("random", "random", BINARY, paper="random search, weight-sharing ranking on the 1-bit supernet", cost=50),
    Row("darts", "darts", paper="DARTS 1st order (Liu et al. 2019), searched real, retrained 1-bit", cost=60),
    Row("darts 1-bit", "darts", BINARY, paper="DARTS 1st order searched on the 1-bit supernet", cost=95),
    Row("pc-darts", "pc-darts", paper="PC-DARTS (Xu et al. 2020), searched real, retrained 1-bit", cost=55),
    Row("pc-darts 1-bit", "pc-darts", BINARY, paper="PC-DARTS searched on the 1-bit supernet", cost=80),
    Row(
        "bnas", "bnas", epoch_based=False, paper="BNAS-style CP indicator without a Parent (Chen et al. 2020)", cost=95
    ),
    Row("cp-nas", "cp-nas", epoch_based=False, paper="CP-NAS (Zhuo et al., IJCAI 2020), retrained with CE", cost=145),
    Row(
        "cp-nas + CP loss",
        "cp-nas",
        ("train.loss.kind=cp",),
        epoch_based=False,
        paper="CP-NAS, retrained with CE + the CP kernel loss (Eqs. 4.17-4.18)",
        cost=150,
    ),
    Row("ddpnas", "ddpnas", BINARY, epoch_based=False, paper="DDPNAS (Zheng et al.), 1-bit", cost=90),
    Row("dcp-nas", "dcp-nas", paper="DCP-NAS (Li et al., IJCV 2023)", cost=160),
    Row("dcp-nas no tangent", "dcp-nas", ("search.options.use_tangent=false",), paper="ablation: lambda = 0", cost=135),
    Row(
        "dcp-nas no reconstruction",
        "dcp-nas",
        ("search.options.use_reconstruction=false",),
        paper="ablation: mu = 0",
        cost=160,
    ),
    Row(
        "dcp-nas no decoupled",
        "dcp-nas",
        ("search.options.use_decoupled=false",),
        paper="ablation: no decoupled optimization",
        cost=155,
    ),
)
#: The rows every other row is compared with, seed by seed (label, name in the table header).
REFERENCES: tuple[tuple[str, str], ...] = (("darts 1-bit", "DARTS 1-bit"), ("dcp-nas", "DCP-NAS"))


@dataclass(frozen=True)
class Budget:
    """What every row shares: data, supernet, search length, retraining recipe."""

    name: str
    search_epochs: int
    common: tuple[str, ...]
    schedule: dict[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""

    def overrides(self, row: Row, seed: int) -> list[str]:
        """The `--set` list of one run."""
        own = [f"search.epochs={self.search_epochs}"] if row.epoch_based else []
        return [*self.common, *own, *self.schedule.get(row.method, ()), *row.overrides, f"seed={seed}"]


#: The default (see the module docstring for why): 8x8 digits, the first 1000 training images, the `strict`
#: 1-bit policy in search and retraining; a C=8, 4-cell supernet searched 2 epochs; the retrained 1-bit
#: network C=16, 5 cells, two-step 4 + 4 epochs at batch 32, evaluated at the end of each step. CP-NAS,
#: BNAS and DDPNAS run their default schedules. About 7,100 CPU s for 13 rows x 5 seeds (an hour, 2 jobs).
DEFAULT_BUDGET = Budget(
    "strict",
    search_epochs=2,
    common=(
        "data.image_size=8",
        "data.max_train_samples=1000",
        "space.policy=strict",
        "space.channels=8",
        "space.layers=4",
        "search.batch_size=64",
        "train.epochs=4",
        "train.batch_size=32",
        "train.net.channels=16",
        "train.net.layers=5",
        "train.eval_every=0",
    ),
    description="8x8 digits, first 1000 training images; strict 1-bit policy (every cell conv binary in "
    "weights and activations); supernet C=8, 4 cells, 2 search epochs (CP-NAS, BNAS, DDPNAS: "
    "their own schedule); retrained C=16, 5 cells, two-step 4 + 4 epochs, batch 32",
)
#: --quick: a few minutes for every row (tiny networks, 256 training images, short schedules).
QUICK_BUDGET = Budget(
    "quick",
    search_epochs=1,
    common=(
        "data.image_size=8",
        "data.max_train_samples=256",
        "space.policy=strict",
        "space.channels=4",
        "space.layers=3",
        "search.batch_size=64",
        "train.epochs=1",
        "train.batch_size=64",
        "train.net.channels=8",
        "train.net.layers=3",
    ),
    schedule={
        "cp-nas": ("search.options.rounds=1", "search.options.max_samples=6", "search.options.eval_batches=1"),
        "bnas": ("search.options.rounds=1", "search.options.max_samples=6", "search.options.eval_batches=1"),
        "ddpnas": ("search.epochs=6", "search.options.eval_batches=1"),
        "random": ("search.options.candidates_per_epoch=2", "search.options.eval_batches=1"),
    },
    description="8x8 digits, 256 training images, strict policy, tiny networks, one epoch (smoke test)",
)


def resolved_config(method: str, overrides: Sequence[str], threads: int) -> Any:
    """The `RunConfig` one run uses (its search options validated and filled in), as `binas run` saves it."""
    from binas.config.io import load_config
    from binas.config.schema import RunConfig
    from binas.strategies import resolve_method_options

    cfg = load_config(RunConfig, None, [f"search.method={method}", f"num_threads={threads}", *overrides])
    return resolve_method_options(cfg)


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out |= _flat(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def config_differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config dicts (`RESUME_IGNORED` top-level keys aside)."""
    a, b = _flat(saved), _flat(wanted)
    return sorted(k for k in a.keys() | b.keys() if k.split(".")[0] not in RESUME_IGNORED and a.get(k) != b.get(k))


def run_one(label: str, method: str, overrides: list[str], run_dir: str, threads: int) -> dict[str, Any]:
    """One `binas run` in this (worker) process; returns its summary.

    A finished run (summary.json) is read back if its saved config is the one this call would run; one of
    another config is an error (never mixed into the table); an unfinished one is started again."""
    from binas.config.io import load_yaml, to_dict
    from binas.engine.runtime import setup_runtime

    cfg = resolved_config(method, overrides, threads)
    run_path = Path(run_dir)
    summary_path = run_path / "summary.json"
    if summary_path.exists():
        differ = config_differences(load_yaml(run_path / "config.yaml"), to_dict(cfg))
        if differ:
            raise RuntimeError(
                f"{run_dir} holds a finished run of another config (differs in {', '.join(differ[:6])}"
                f"{', ...' if len(differ) > 6 else ''}); choose another --work-dir or delete it"
            )
        return json.loads(summary_path.read_text())
    import torch

    from binas.workflows import run as pipeline

    torch.set_num_threads(threads)
    if run_path.exists():  # an interrupted run: start it again from scratch (its search may have moved on)
        import shutil

        shutil.rmtree(run_path)
    runtime = setup_runtime(cfg.device, cfg.seed, num_threads=threads)
    result = pipeline.run(cfg, run_dir, plots=False, progress=False, runtime=runtime)
    return result.summary


def _outcomes(jobs: dict[Any, tuple], workers: int) -> Iterator[tuple[Any, dict[str, Any] | Exception]]:
    """(key, summary or the exception) of `run_one(*args)` for each job, as they finish; jobs start in the
    order of `jobs`.

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


def submission_order(tasks: Sequence[tuple[Row, int]]) -> list[tuple[Row, int]]:
    """Longest runs first (by `Row.cost`), then by seed and table order: the pool then ends on short runs."""
    position = {row.label: i for i, row in enumerate(ROWS)}
    return sorted(tasks, key=lambda t: (-t[0].cost, t[1], position.get(t[0].label, 0)))


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Mean and the two-sided Student-t interval mean ± t((1+confidence)/2, n-1) sd / sqrt(n).

    `half`, `lo` and `hi` are None for fewer than 2 values (no spread to estimate)."""
    n = len(values)
    if n == 0:
        raise ValueError("t_interval needs at least one value")
    mean = statistics.fmean(values)
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "half": None, "lo": None, "hi": None}
    from scipy.stats import t

    sd = statistics.stdev(values)
    half = float(t.ppf((1.0 + confidence) / 2.0, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "half": half, "lo": mean - half, "hi": mean + half}


def outside_noise(interval: dict[str, Any] | None) -> bool:
    """True when an interval of a difference excludes 0."""
    return bool(interval and interval["half"] is not None and (interval["lo"] > 0 or interval["hi"] < 0))


def paired_difference(
    row: dict[int, float], reference: dict[int, float], confidence: float = CONFIDENCE
) -> dict[str, Any] | None:
    """Per-seed differences row - reference over the seeds both have ({seed: top-1}), with their mean,
    t interval and whether it excludes 0; None when they share no seed."""
    seeds = sorted(row.keys() & reference.keys())
    if not seeds:
        return None
    diffs = [row[s] - reference[s] for s in seeds]
    stats = t_interval(diffs, confidence)
    return stats | {"seeds": seeds, "diffs": diffs, "outside_noise": outside_noise(stats)}


def aggregate(
    rows: Sequence[Row], runs: dict[str, list[dict[str, Any]]], references: Sequence[tuple[str, str]] = REFERENCES
) -> list[dict[str, Any]]:
    """Per row: top-1 mean, std and 95 % t interval over seeds, the paired difference to each reference
    row, mean seconds and complexity. Each summary of `runs` carries its `seed`."""
    by_seed = {label: {int(r["seed"]): float(r["top1"]) for r in done} for label, done in runs.items()}
    table = []
    for row in rows:
        done = sorted(runs.get(row.label, []), key=lambda r: r["seed"])
        if not done:
            continue
        top1 = [float(r["top1"]) for r in done]  # summaries hold top-1 in %
        stats = t_interval(top1)
        paired = {}
        for ref, _ in references:
            if ref in by_seed and ref != row.label:
                paired[ref] = paired_difference(by_seed[row.label], by_seed[ref])
        table.append(
            {
                "label": row.label,
                "method": row.method,
                "overrides": list(row.overrides),
                "paper": row.paper,
                "seeds": len(done),
                "seed_list": [r["seed"] for r in done],
                "top1_mean": stats["mean"],
                "top1_std": stats["sd"] or 0.0,
                "top1_ci": stats["half"],
                "top1_lo": stats["lo"],
                "top1_hi": stats["hi"],
                "top1_all": top1,
                "paired": paired,
                "search_seconds": statistics.fmean(r["search_seconds"] for r in done),
                "train_seconds": statistics.fmean(r["train_seconds"] for r in done),
                "search_cpu_seconds": statistics.fmean(r["search_cpu_seconds"] for r in done),
                "train_cpu_seconds": statistics.fmean(r["train_cpu_seconds"] for r in done),
                "search_epochs": statistics.fmean(r["search_epochs"] for r in done),
                "params": statistics.fmean(r["params"] for r in done),
                "ops": statistics.fmean(r["ops"] for r in done),
                "memory_mbit": statistics.fmean(r["memory_mbit"] for r in done),
                "archids": [r["archid"] for r in done],
            }
        )
    return table


def _pm(mean: float, half: float | None, sign: bool = False) -> str:
    value = f"{mean:+.2f}" if sign else f"{mean:.2f}"
    return f"{value} ± {half:.2f}" if half is not None else f"{value} (1 seed)"


def _delta_cell(row: dict[str, Any], ref: str) -> str:
    if row["label"] == ref:
        return "ref"
    diff = row.get("paired", {}).get(ref)
    if diff is None:
        return "—"
    text = _pm(diff["mean"], diff["half"], sign=True)
    return f"**{text}**" if diff["outside_noise"] else text


LEGEND = (
    "Legend: ± is the half-width of the 95 % Student-t interval over the seeds; Δ is the mean of the "
    "per-seed differences (this row − the reference row, same seed) ± its 95 % t interval; **bold** Δ: "
    "the interval excludes 0 (outside the seed noise), plain: inside the seed noise; ref: the reference "
    "itself."
)


def noise_sentence(table: Sequence[dict[str, Any]], references: Sequence[tuple[str, str]] = REFERENCES) -> str:
    """Which paired differences are outside the seed noise and which are not, in words ("" if none)."""
    parts, outside, inside = [], 0, 0
    for ref, name in references:
        out = []
        for r in table:
            diff = r.get("paired", {}).get(ref)
            if diff is None:
                continue
            if diff["outside_noise"]:
                out.append(f"{r['label']} ({diff['mean']:+.2f})")
            else:
                inside += 1
        outside += len(out)
        if out:
            parts.append(f"vs {name}: " + ", ".join(out))
    if not outside:
        return "No paired difference is outside the seed noise (every 95 % interval contains 0)." if inside else ""
    return (
        f"Outside the seed noise (the 95 % paired interval excludes 0): {'; '.join(parts)}. "
        f"The other {inside} paired difference{'s are' if inside != 1 else ' is'} inside the seed noise."
    )


def markdown(result: dict[str, Any]) -> str:
    """The results table, its caption, legend and noise summary, as README.md shows it."""
    m = result["machine"]
    budget = result["budget"]
    seeds = " ".join(str(s) for s in result["seeds"])
    what = f"{result['data']}: {budget['description']}" if budget.get("description") else result["data"]
    lines = [
        f"Budget `{budget['name']}` ({what}), {len(result['seeds'])} seeds ({seeds}, the same for every row), "
        f"run {result['finished'][:10]} on "
        f"{m['cpus']} CPU cores ({m['processor']}), {result['jobs']} runs in parallel with {result['threads']} "
        f"thread each; torch {m['torch']}. Top-1 of the retrained 1-bit network on the test split. Cost is CPU "
        "seconds of the run's process (one thread, so about wall seconds on a quiet machine; unlike wall time, it "
        "is barely disturbed by the runs beside it), mean over seeds. Params/OPs/Mbit of the retrained network "
        "(mean over seeds). Produced by `python benchmarks/reproduce.py`.",
        "",
        "| method | top-1 % (mean ± 95 % CI) | "
        + "".join(f"Δ vs {name} | " for _, name in REFERENCES)
        + "search CPU s | train CPU s | params (M) | OPs (M) | Mbit |",
        "|---|---|" + "---|" * len(REFERENCES) + "---|---|---|---|---|",
    ]
    for r in result["table"]:
        deltas = " | ".join(_delta_cell(r, ref) for ref, _ in REFERENCES)
        lines.append(
            f"| {r['label']} | {_pm(r['top1_mean'], r.get('top1_ci'))} | {deltas} | {r['search_cpu_seconds']:.0f} | "
            f"{r['train_cpu_seconds']:.0f} | {r['params'] / 1e6:.3f} | {r['ops'] / 1e6:.2f} | {r['memory_mbit']:.3f} |"
        )
    lines += ["", LEGEND]
    sentence = noise_sentence(result["table"])
    if sentence:
        lines += ["", sentence]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """Top-1 mean with its 95 % t interval as the error bar, against search CPU seconds, log x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    markers = iter("osDv^<>phP*Xd8H")
    for r in result["table"]:
        half = r.get("top1_ci") or 0.0
        ax.errorbar(
            r["search_cpu_seconds"],
            r["top1_mean"],
            yerr=half,
            fmt=next(markers, "o"),
            capsize=3,
            label=r["label"],
            alpha=0.85,
        )
    if result["table"]:
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # labels never overlap the points
    ax.set_xscale("log")
    ax.set_xlabel("search CPU seconds per run (log scale)")
    ax.set_ylabel("top-1 % of the retrained 1-bit network")
    ax.set_title(
        f"binas reproduction on {result['data']}: mean and 95 % t interval over "
        f"{len(result['seeds'])} seeds ({result['finished'][:10]})",
        fontsize=10,
    )
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def update_readme(out: Path, readme: Path = README) -> None:
    """Replace the block between the reproduce markers in README.md with OUT.md and the plot's link."""
    result = _read_result(out.with_suffix(".json"))
    rel = os.path.relpath(out.with_suffix(".png"), readme.parent)
    write_block(readme, README_BEGIN, README_END, f"{markdown(result)}\n![accuracy vs search cost]({rel})")


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
    return {
        "cpus": os.cpu_count(),
        "processor": processor,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget, a few minutes")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(DEFAULT_SEEDS),
        help="seeds of every row (the same for all rows: differences are paired)",
    )
    parser.add_argument("--only", nargs="+", metavar="LABEL", help="run these rows only (labels of the table)")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (one torch thread each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--data-dir", type=Path, help="CIFAR-10 (python batches) instead of the bundled digits")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra config override for every run (repeatable)",
    )
    parser.add_argument("--work-dir", type=Path, help=f"run directories (default {DEFAULT_WORK}/<budget>-<data>)")
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
    unknown = set(args.only or ()) - {r.label for r in ROWS}
    if unknown:
        parser.error(f"unknown row(s) {sorted(unknown)}; rows: {[r.label for r in ROWS]}")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    rows = [r for r in ROWS if not args.only or r.label in args.only]
    data: list[str] = []
    dataset = "digits"
    if args.data_dir is not None:
        if not args.data_dir.exists():
            parser.error(f"--data-dir {args.data_dir} does not exist")
        data = ["data.name=cifar10", f"data.data_dir={args.data_dir}", "data.image_size=32"]
        dataset = "cifar10"
    work = args.work_dir or DEFAULT_WORK / f"{budget.name}-{dataset}"
    tasks = submission_order([(row, seed) for row in rows for seed in args.seeds])
    machine = _machine()
    started = time.time()
    runs: dict[str, list[dict[str, Any]]] = {}
    print(f"{len(tasks)} runs ({len(rows)} rows x {len(args.seeds)} seeds), {args.jobs} at a time -> {work}")
    if budget is DEFAULT_BUDGET and not data:
        estimate = sum(row.cost for row, _ in tasks)
        print(
            f"estimated {estimate:.0f} CPU s (rows' cost at this budget), about "
            f"{estimate / max(args.jobs, 1) / 60:.0f} min with {args.jobs} job(s); finished runs are read back"
        )
    jobs = {
        (row, seed): (
            row.label,
            row.method,
            budget.overrides(row, seed) + data + list(args.overrides),
            str(work / row.slug / f"seed{seed}"),
            args.threads,
        )
        for row, seed in tasks
    }
    for n, ((row, seed), outcome) in enumerate(_outcomes(jobs, args.jobs), 1):
        if isinstance(outcome, BaseException):  # one failed run is reported, the others still count
            print(f"[{n}/{len(tasks)}] {row.label} seed {seed}: FAILED: {outcome}", file=sys.stderr)
            continue
        runs.setdefault(row.label, []).append(outcome | {"seed": seed})
        print(
            f"[{n}/{len(tasks)}] {row.label} seed {seed}: top-1 {outcome['top1']:.2f}%, "
            f"search {outcome['search_cpu_seconds']:.0f} CPU s, train {outcome['train_cpu_seconds']:.0f} CPU s "
            f"({time.time() - started:.0f} s elapsed)",
            flush=True,
        )
    for summaries in runs.values():
        summaries.sort(key=lambda s: s["seed"])
    result = {
        "budget": {
            "name": budget.name,
            "description": budget.description,
            "search_epochs": budget.search_epochs,
            "common": list(budget.common),
            "schedule": {k: list(v) for k, v in budget.schedule.items()},
            "extra": data + args.overrides,
        },
        "data": dataset,
        "seeds": args.seeds,
        "jobs": args.jobs,
        "threads": args.threads,
        "confidence": CONFIDENCE,
        "references": [ref for ref, _ in REFERENCES],
        "machine": machine | {"loadavg_end": os.getloadavg()},
        "wall_seconds": round(time.time() - started, 1),
        "cpu_seconds": round(
            sum(s["search_cpu_seconds"] + s["train_cpu_seconds"] for v in runs.values() for s in v), 1
        ),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": [
            {
                "label": r.label,
                "method": r.method,
                "overrides": list(r.overrides),
                "epoch_based": r.epoch_based,
                "paper": r.paper,
                "cost_estimate": r.cost,
            }
            for r in rows
        ],
        "table": aggregate(rows, runs),
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    plot(result, out.with_suffix(".png"))
    print(markdown(result))
    print(f"written {out}.json/.md/.png in {result['wall_seconds']:.0f} s ({result['cpu_seconds']:.0f} CPU s of runs)")
    failed = len(tasks) - sum(len(v) for v in runs.values())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
