"""Run directories never collide; JSON summaries are written atomically and always valid."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from binas.engine.rundir import make_run_dir
from binas.errors import BinasError, StorageError
from binas.storage.files import atomic_open, to_jsonable, write_json

RUN_NAME = re.compile(r"^\d{8}-\d{6}-(?P<method>.+)-[0-9a-f]{6}$")


def test_generated_run_dirs_are_unique(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    dirs = [make_run_dir(root, "dcpnas") for _ in range(50)]  # same second: the hex suffix differs
    assert len(set(dirs)) == 50
    for path in dirs:
        assert path.is_dir() and path.parent == root
        match = RUN_NAME.match(path.name)
        assert match and match.group("method") == "dcpnas"


def test_generated_run_dir_never_reuses_existing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suffixes = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr("binas.engine.rundir.secrets.token_hex", lambda n: next(suffixes))
    monkeypatch.setattr("binas.engine.rundir.time.strftime", lambda fmt: "20260101-000000")
    first = make_run_dir(tmp_path, "darts")
    (first / "checkpoint.pt").write_text("old run")
    second = make_run_dir(tmp_path, "darts")
    assert first.name == "20260101-000000-darts-aaaaaa" and second.name == "20260101-000000-darts-bbbbbb"
    assert (first / "checkpoint.pt").read_text() == "old run"


def test_method_name_is_sanitized(tmp_path: Path) -> None:
    path = make_run_dir(tmp_path, "../evil name")
    assert path.parent == tmp_path and "/" not in path.name and " " not in path.name


def test_explicit_out_is_created_and_reused(tmp_path: Path) -> None:
    out = tmp_path / "my" / "run"
    assert make_run_dir(tmp_path / "runs", "x", out=out) == out and out.is_dir()
    (out / "metrics.jsonl").write_text("{}\n")
    assert make_run_dir(out=out) == out and (out / "metrics.jsonl").exists()
    assert not (tmp_path / "runs").exists()


def test_out_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(BinasError, match="not a directory") as info:
        make_run_dir(out=target)
    assert "\n" not in str(info.value)
    with pytest.raises(BinasError, match="not a directory"):
        make_run_dir(target, "x")


@dataclass
class Summary:
    genotype: str
    acc: float


def test_write_json_round_trip_and_non_finite(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_json(
        path,
        {"best": Summary("g", 0.9), "loss": math.nan, "shape": (1, 2), "t": torch.tensor(3), "dir": tmp_path},
    )
    text = path.read_text()
    assert text.endswith("\n") and '\n  "best"' in text  # indent 2
    assert json.loads(text) == {
        "best": {"genotype": "g", "acc": 0.9},
        "loss": "nan",
        "shape": [1, 2],
        "t": 3,
        "dir": str(tmp_path),
    }


def test_write_json_failure_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "summary.json"
    write_json(path, {"v": 1})

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="disk full"):
        write_json(path, {"v": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_atomic_open_body_error_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write("half of the new")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    with pytest.raises(ValueError):
        with atomic_open(path, "a"):
            pass


def test_atomic_open_uses_normal_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    with atomic_open(path) as handle:
        handle.write(b"abc")
    umask = os.umask(0)
    os.umask(umask)
    assert path.read_bytes() == b"abc" and (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_to_jsonable_rejects_objects() -> None:
    with pytest.raises(TypeError):
        to_jsonable({"x": object()})
