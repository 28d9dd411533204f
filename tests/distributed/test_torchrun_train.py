"""`torchrun -m binas train` end to end: one run directory, written by rank 0 only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.distributed.helpers import TIMEOUT_S, WORLD_SIZE, free_port


def test_torchrun_train_writes_one_run_from_rank_0(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={WORLD_SIZE}",
        "--nnodes=1",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "binas",
        "train",
        "darts-v2",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--channels",
        "4",
        "--layers",
        "3",
        "--batch-size",
        "32",
        "--set",
        "data.image_size=8",
        "--set",
        "data.max_train_samples=64",
        "--set",
        "num_threads=1",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("run dir") == 1  # only rank 0 reports
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["phases"]) == ["step1", "step2"] and 0 <= summary["top1"] <= 100
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["phase"] for line in lines] == ["step1", "step2"]  # one writer
