"""How much each DCP-NAS mechanism acts at the defaults, against the earlier (inert) readings.

Runs DCP-NAS for `--epochs` epochs on the method review's setup (digits 8x8, 512 training images, C=8,
5 cells, batch 64, seed 0, one thread) once per variant and records, per epoch, the magnitudes the strategy
logs for each mechanism:

    tangent propagation      tangent_ratio = ||lambda H dD/dg_C|| / ||g_C||, tangent_distance D(g_C, g_P)
    decoupled optimization   {parent,child}_backtrack_per_round, _kappa_mean, _psi_change
    reconstruction loss      child_recon_kd_ratio = ||mu grad L_R|| / ||grad KD||, child_sign_flip_fraction

Variants: the defaults; each mechanism at its earlier reading (lambda on batch-mean losses; L_R summed;
eta = eta1*eta2 with psi_0 = 1e-3 and eta_psi = 1); L_R off (the sign flips it leaves alone).

    python benchmarks/mechanisms.py                 # writes benchmarks/results/mechanisms.json (a few minutes)
    python benchmarks/mechanisms.py --epochs 1 --out /tmp/m.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "mechanisms.json"

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "tangent on batch means (earlier)": {"tangent_reduction": "mean"},
    "L_R summed (earlier)": {"reconstruction_reduction": "sum"},
    "eta1*eta2, psi_0 1e-3, eta_psi 1 (earlier)": {"eta_schedule": "product", "psi_init": 1e-3, "psi_lr": 1.0},
    "L_R off": {"use_reconstruction": False},
}
KEYS = (
    "tangent_lambda",
    "tangent_ratio",
    "tangent_distance",
    "child_grad_norm",
    "parent_grad_norm",
    "child_backtrack_per_round",
    "parent_backtrack_per_round",
    "child_kappa_mean",
    "parent_kappa_mean",
    "child_psi_change",
    "parent_psi_change",
    "child_recon_kd_ratio",
    "child_sign_flip_fraction",
    "child_val_acc",
    "parent_val_acc",
)


def run_variant(options: dict[str, Any], epochs: int, max_train_samples: int) -> list[dict[str, float]]:
    """Per-epoch mechanism magnitudes of one DCP-NAS search (the engine's seeding, no run directory)."""
    from binas.config.schema import DataConfig, RunConfig, SearchConfig, SpaceConfig
    from binas.engine.loop import EpochLoop
    from binas.engine.runtime import seed_everything, setup_runtime
    from binas.seeds import derive_seed
    from binas.workflows import search as api

    cfg = RunConfig(
        seed=0,
        device="cpu",
        num_threads=1,
        data=DataConfig(name="digits", image_size=8, max_train_samples=max_train_samples),
        space=SpaceConfig(channels=8, layers=5),
        search=SearchConfig(method="dcp-nas", epochs=epochs, batch_size=64, options=options),
    )
    runtime = setup_runtime("cpu", cfg.seed, num_threads=1)
    strategy = api.build_strategy(cfg, runtime)
    rows = []
    for epoch in range(epochs):
        seed_everything(derive_seed(cfg.seed, "search-epoch", epoch))
        started = time.process_time()
        metrics = strategy.run_epoch(epoch, EpochLoop(runtime, epoch, cfg.search.batch_size, progress=False))
        metrics |= strategy.epoch_record()
        row = {k: float(metrics[k]) for k in KEYS if isinstance(metrics.get(k), (int, float))}
        rows.append(row | {"epoch": epoch, "cpu_seconds": round(time.process_time() - started, 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-train-samples", type=int, default=512)
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    import torch

    names = args.only or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}", file=sys.stderr)
        return 2
    result: dict[str, Any] = {
        "benchmark": "mechanisms",
        "command": "python benchmarks/mechanisms.py " + " ".join(argv or sys.argv[1:]),
        "setup": {
            "data": "digits 8x8",
            "max_train_samples": args.max_train_samples,
            "channels": 8,
            "layers": 5,
            "batch_size": 64,
            "seed": 0,
            "threads": 1,
            "epochs": args.epochs,
        },
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__},
        "date": time.strftime("%Y-%m-%d"),
        "variants": {},
    }
    for name in names:
        rows = run_variant(VARIANTS[name], args.epochs, args.max_train_samples)
        result["variants"][name] = {"options": VARIANTS[name], "epochs": rows}
        for row in rows:
            shown = ", ".join(
                f"{k}={row[k]:.3g}"
                for k in (
                    "tangent_ratio",
                    "child_backtrack_per_round",
                    "child_psi_change",
                    "child_recon_kd_ratio",
                    "child_sign_flip_fraction",
                )
                if k in row
            )
            print(f"{name:45s} epoch {row['epoch']}: {shown}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
