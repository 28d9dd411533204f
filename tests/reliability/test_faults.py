"""Faults around a run: killed before its first checkpoint, killed mid-write, two writers on one run
directory, a full disk, memory that does not fit. Each ends in a clean state or one line, never a
traceback, and never loses what was already saved."""

from __future__ import annotations

import errno
import json

import pytest
import torch

from binas.cli.main import EXIT_USAGE, main
from binas.errors import StorageError
from binas.storage.checkpoint import load_checkpoint, save_checkpoint
from binas.storage.files import remove_stale_temp_files
from binas.storage.lock import run_lock
from tests.cli.flags import TINY

SEARCH = ["search", "--method", "darts", "--epochs", "2", "--quiet", *TINY]


def _one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"binas {command}: error: ") and "Traceback" not in err, err
    return lines[0]


def test_resume_before_the_first_checkpoint_starts_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*SEARCH, "--out", str(run)]) == 0
    finished = json.loads((run / "search_summary.json").read_text())
    for name in ("checkpoint.pt", "metrics.jsonl", "genotype.json", "search_summary.json"):  # as if killed in epoch 0
        (run / name).unlink()
    stale = run / ".checkpoint.pt.0123abcd.tmp"  # a write the kill interrupted
    stale.write_bytes(b"half a checkpoint")
    capsys.readouterr()
    assert main(["search", "--resume", str(run), "--quiet"]) == 0
    again = json.loads((run / "search_summary.json").read_text())
    assert again["genotype"] == finished["genotype"] and again["epochs"] == 2  # the same run, from the start
    assert not stale.exists()


def test_stale_temp_files_are_the_only_files_removed(tmp_path):
    keep = [tmp_path / "checkpoint.pt", tmp_path / ".lock", tmp_path / "notes.tmp", tmp_path / ".x.0123.tmp"]
    for p in keep:
        p.write_text("x")
    stale = tmp_path / ".summary.json.deadbeef.tmp"
    stale.write_text("x")
    assert remove_stale_temp_files(tmp_path) == [stale] and all(p.exists() for p in keep)


def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    with run_lock(run):  # another binas process holds the run directory
        code = main([*SEARCH, "--out", str(run)])
        line = _one_error_line(capsys.readouterr().err, "search")
    assert code == EXIT_USAGE and "in use by another binas process" in line
    assert main([*SEARCH, "--out", str(run)]) == 0  # released: the run goes ahead


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)}, kind="search")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("binas.storage.files.os.fsync", full)
    with pytest.raises(StorageError, match="No space left on device") as err:
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(3)}, kind="search")
    assert "previous version is kept" in str(err.value) and "\n" not in str(err.value)
    assert load_checkpoint(path)["epoch"] == 1 and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_full_disk_during_a_search_is_one_line(tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("binas.storage.files.os.fsync", full)
    code = main([*SEARCH, "--out", str(tmp_path / "run")])
    assert code == EXIT_USAGE and "No space left on device" in _one_error_line(capsys.readouterr().err, "search")


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        MemoryError(),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
    ],
)
def test_memory_that_does_not_fit_names_the_settings_to_lower(tmp_path, capsys, monkeypatch, error):
    def too_big(*args, **kwargs):
        raise error

    monkeypatch.setattr("binas.workflows.search.run_search", too_big)
    code = main([*SEARCH, "--out", str(tmp_path / "run")])
    line = _one_error_line(capsys.readouterr().err, "search")
    assert code == EXIT_USAGE and "out of memory" in line and "search.batch_size" in line


def test_other_runtime_errors_keep_their_traceback(tmp_path, monkeypatch):
    def bug(*args, **kwargs):
        raise RuntimeError("a bug, not the user's input")

    monkeypatch.setattr("binas.workflows.search.run_search", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main([*SEARCH, "--out", str(tmp_path / "run")])


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_the_run_resumes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "binas", "search", "--method", "darts", "--epochs", "30", "--quiet", *TINY]
    proc = subprocess.Popen([*argv, "--out", str(run)], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while proc.poll() is None and not (run / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "terminated" in err and f"--resume {run}" in err and "Traceback" not in err
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] >= 0  # the last completed epoch is kept
