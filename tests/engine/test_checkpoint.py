"""Checkpoints: round trip, atomic replace, and a clear one-line error for every bad file."""

from __future__ import annotations

import logging
import os
import random
from collections import OrderedDict, namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import binas
from binas.errors import CheckpointError, StorageError
from binas.storage.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)


def tiny_payload() -> dict:
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    return {
        "epoch": 4,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "genotype": {"normal": [("sep_conv_3x3", 0), ("skip_connect", 1)], "normal_concat": [2, 3]},
        "meta": {
            "shape": torch.Size([2, 3]),
            "dtype": torch.float32,
            "tags": {"a", "b"},
            "blob": b"x",
            "none": None,
            "ratio": 0.5,
            "ok": True,
        },
        "ordered": OrderedDict(a=torch.zeros(2)),
    }


def load_error(path: Path, **kwargs: object) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_round_trip(tmp_path: Path) -> None:
    payload = tiny_payload()
    path = save_checkpoint(tmp_path / "checkpoint.pt", payload, kind="search")
    loaded = load_checkpoint(path, kind="search")
    assert loaded.keys() == payload.keys() and loaded["epoch"] == 4
    for name, tensor in payload["model"].items():
        assert torch.equal(loaded["model"][name], tensor)
    assert loaded["optimizer"]["param_groups"] == payload["optimizer"]["param_groups"]
    assert loaded["genotype"] == payload["genotype"] and loaded["meta"] == payload["meta"]
    assert load_checkpoint(path)["epoch"] == 4  # kind=None accepts any kind


def test_header_is_written(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pt", {"x": 1}, kind="train")
    record = torch.load(path, weights_only=True)
    assert record["format"] == CHECKPOINT_FORMAT and record["version"] == CHECKPOINT_VERSION
    assert record["kind"] == "train" and record["binas_version"] == binas.__version__


def test_save_creates_parent_dir(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "a" / "b" / "c.pt", {"x": 1}, kind="train")
    assert load_checkpoint(path) == {"x": 1}


def test_crash_before_replace_keeps_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1}, kind="search")

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="simulated crash"):  # one line for the CLI, old file kept
        save_checkpoint(path, {"epoch": 2}, kind="search")
    monkeypatch.undo()
    assert load_checkpoint(path, kind="search") == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # temp file removed


def test_overwrite_replaces(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1}, kind="search")
    save_checkpoint(path, {"epoch": 2}, kind="search")
    assert load_checkpoint(path) == {"epoch": 2}


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        (np.float64(1.0), "payload['metrics']['acc']"),
        (np.zeros(2), "payload['metrics']['acc']"),
        (namedtuple("P", "a")(1), "payload['metrics']['acc']"),
        (frozenset({1}), "payload['metrics']['acc']"),
        (nn.Linear(1, 1), "payload['metrics']['acc']"),
    ],
)
def test_save_rejects_values_weights_only_cannot_load(tmp_path: Path, bad: object, where: str) -> None:
    with pytest.raises(TypeError) as info:
        save_checkpoint(tmp_path / "c.pt", {"metrics": {"acc": bad}}, kind="search")
    assert str(info.value).startswith(where)
    assert not (tmp_path / "c.pt").exists()


def test_save_argument_checks(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "c.pt", [1], kind="search")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path / "c.pt", {}, kind="")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "not found" in load_error(tmp_path / "nope.pt")
    assert "directory" in load_error(tmp_path)


def test_truncated_checkpoint(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pt", tiny_payload(), kind="search")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in load_error(path)


def test_empty_and_garbage_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert "truncated or corrupt" in load_error(empty)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"definitely not a checkpoint\n" * 10)
    assert "truncated or corrupt" in load_error(garbage)


def test_plain_state_dict_is_foreign(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(nn.Linear(2, 2).state_dict(), path)
    message = load_error(path)
    assert "is not a binas checkpoint" in message and "state_dict with 2 tensors" in message


def test_tensor_and_foreign_dict_are_foreign(tmp_path: Path) -> None:
    tensor_file = tmp_path / "t.pt"
    torch.save(torch.zeros(2, 3), tensor_file)
    assert "a tensor of shape (2, 3)" in load_error(tensor_file)
    dict_file = tmp_path / "d.pt"
    torch.save({"state_dict": {}, "epoch": 3}, dict_file)
    assert "dict with keys 'state_dict', 'epoch'" in load_error(dict_file)


def test_pickled_module_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "whole_model.pt"
    torch.save(nn.Linear(2, 2), path)  # a pickled class: weights_only refuses it, no code runs
    assert "not a binas checkpoint: it holds a pickled torch.nn.modules.linear.Linear" in load_error(path)


def test_wrong_kind(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pt", {"x": 1}, kind="search")
    assert load_error(path, kind="train") == (f"{path} is a 'search' checkpoint, expected a 'train' checkpoint")


def test_newer_and_invalid_versions(tmp_path: Path) -> None:
    path = tmp_path / "future.pt"
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION + 1,
            "kind": "search",
            "binas_version": "9.0.0",
            "payload": {},
        },
        path,
    )
    message = load_error(path)
    assert "binas 9.0.0" in message and "upgrade binas" in message
    torch.save({"format": CHECKPOINT_FORMAT, "version": "one", "kind": "search", "payload": {}}, path)
    assert "invalid checkpoint version" in load_error(path)
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "kind": "search", "payload": [1]}, path)
    assert "payload is a list" in load_error(path)


# ---------------------------------------------------------------------------------------- RNG state


def draws() -> tuple[list[float], list[float], list[float], float]:
    return (
        [random.random() for _ in range(3)],
        np.random.rand(3).tolist(),
        torch.rand(3).tolist(),
        random.gauss(0.0, 1.0),
    )


def test_rng_capture_restore_repeats_draws() -> None:
    random.gauss(0.0, 1.0)  # leave a cached gaussian in the Python state
    np.random.randn()
    state = capture_rng_state()
    first = draws()
    restore_rng_state(state)
    assert draws() == first


def test_rng_state_survives_checkpoint(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pt", {"rng": capture_rng_state()}, kind="search")
    first = draws()
    draws()  # move on, as the rest of a killed run would have
    restore_rng_state(load_checkpoint(path)["rng"])
    assert draws() == first


def test_malformed_rng_state() -> None:
    state = capture_rng_state()
    del state["numpy"]
    with pytest.raises(CheckpointError, match="RNG state is malformed"):
        restore_rng_state(state)


def test_cuda_rng_state_skipped_without_cuda(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    state = capture_rng_state()
    state["cuda"] = [torch.zeros(16, dtype=torch.uint8)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="binas.storage.checkpoint"):
        restore_rng_state(state)
    assert "CUDA RNG" in caplog.text


def test_save_rejects_non_plain_dict_keys(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"payload\['counts'\] key"):
        save_checkpoint(tmp_path / "c.pt", {"counts": {np.int64(3): 1}}, kind="search")
