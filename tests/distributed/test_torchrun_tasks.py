"""`torchrun -m binas detect` and `torchrun -m binas reid`: one run directory, written by rank 0 only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.distributed.helpers import TIMEOUT_S, WORLD_SIZE, free_port

TASKS = {
    "detect": ["--set", "data.max_train_images=32", "--set", "data.max_test_images=16", "--set", "train.batch_size=16"],
    "reid": ["--set", "data.max_train_ids=40", "--set", "data.max_test_ids=20"],
}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_torchrun_task_writes_one_run_from_rank_0(tmp_path, task):
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
        task,
        "--out",
        str(out),
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--set",
        "model.channels=4",
        "--set",
        "num_threads=1",
        *TASKS[task],
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S * 2, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("run dir") == 1  # only rank 0 reports
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["phases"]) == ["step1", "step2"]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["phase"] for line in lines] == ["step1", "step2"]  # one writer
