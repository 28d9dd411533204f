"""Checkpoints: atomic, versioned, validated on load, and loadable with ``torch.load(weights_only=True)``.

A checkpoint file holds ``{"format": "binas-checkpoint", "version": 1, "kind": ..., "binas_version":
..., "payload": {...}}``. ``kind`` says what wrote it (``"search"``, ``"train"`` ...) so that a search
checkpoint handed to ``binas train`` is a clear error instead of a confusing ``KeyError``.

Payloads must be *plain data*: dicts, lists, tuples, sets, str, bytes, numbers, bool, None, tensors,
``torch.Size``/``dtype``/``device`` (no frozensets, namedtuples or numpy values). That is exactly what
``torch.load(weights_only=True)`` reads back, so loading never runs pickled code from a file someone
handed us; :func:`save_checkpoint` checks it up front so an unreadable checkpoint is caught when it is
written, not at resume time. Convert genotypes and configs with their ``to_dict()``, numpy arrays with
``torch.from_numpy`` and numpy scalars with ``float``. RNG states are stored as tensors / lists for the
same reason (:func:`capture_rng_state`).
"""

from __future__ import annotations

import logging
import pickle
import random
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from binas.errors import CheckpointError
from binas.storage.files import atomic_open
from binas.version import __version__

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "binas-checkpoint"
CHECKPOINT_VERSION = 1  # bump when the layout changes; loading refuses versions newer than this

# Exact types (not isinstance: numpy.float64 is a float subclass that weights_only loading rejects).
_LEAVES = (str, bytes, int, float, complex, bool, type(None), torch.Size, torch.dtype, torch.device)
_CONTAINERS = (dict, OrderedDict, list, tuple, set)
_PICKLED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")  # torch's weights_only message


def save_checkpoint(path: str | Path, payload: dict[str, Any], *, kind: str) -> Path:
    """Write ``payload`` under a binas header, atomically (temp file, fsync, ``os.replace``).

    A crash during the write leaves the previous checkpoint intact. Raises ``TypeError`` (a bug, not a
    user error) if the payload holds something ``weights_only`` loading could not read back.
    """
    if not isinstance(payload, dict):
        raise TypeError(f"checkpoint payload must be a dict, got {type(payload).__name__}")
    if not kind or not isinstance(kind, str):
        raise ValueError(f"checkpoint kind must be a non-empty string, got {kind!r}")
    _check_plain(payload, "payload")
    path = Path(path)
    record = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "kind": kind,
        "binas_version": __version__,
        "payload": payload,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        torch.save(record, handle)
    logger.debug("saved %s checkpoint %s", kind, path)
    return path


def _check_plain(obj: Any, where: str) -> None:
    """Raise TypeError naming the first value that ``weights_only`` loading would reject."""
    if type(obj) in _CONTAINERS:
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for key, value in items:
            if isinstance(obj, dict):
                _check_plain(key, f"{where} key {key!r}")
            _check_plain(value, f"{where}[{key!r}]")
    elif type(obj) not in _LEAVES and not isinstance(obj, torch.Tensor):
        hint = " (use float()/int() or torch.from_numpy)" if type(obj).__module__ == "numpy" else ""
        raise TypeError(
            f"{where}: a {type(obj).__qualname__} cannot go in a checkpoint{hint}; store plain data and tensors"
        )


def load_checkpoint(path: str | Path, *, kind: str | None = None, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` and return its payload.

    Args:
        path: the checkpoint file.
        kind: if given, the kind the caller expects (``"search"``, ``"train"``); another kind is an error.
        map_location: passed to ``torch.load``; CPU by default so any checkpoint opens anywhere.

    Raises:
        CheckpointError: (one line) the file is missing, truncated or corrupt, is not a binas checkpoint
            (e.g. a bare ``state_dict``), has another kind, or comes from a newer binas.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a checkpoint file" if path.is_dir() else "not found"
        raise CheckpointError(f"checkpoint {path} {what}")
    try:
        record = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _PICKLED_GLOBAL.search(str(exc))
        if found:  # weights_only refused a class (e.g. `torch.save(model)`): not written by binas
            raise CheckpointError(
                f"{path} is not a binas checkpoint: it holds a pickled {found.group(1)}, "
                "binas checkpoints hold only tensors and plain data"
            ) from None
        raise CheckpointError(f"{path} is truncated or corrupt: cannot unpickle it") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # torch raises RuntimeError/EOFError/... on damaged files
        raise CheckpointError(f"{path} is truncated or corrupt: {_first_line(exc)}") from None
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a binas checkpoint (found {_describe(record)}); binas reads only files written by binas"
        )
    version = record.get("version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path} has an invalid checkpoint version {version!r}")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} was written by binas {record.get('binas_version', '?')} (checkpoint version "
            f"{version}); this binas {__version__} reads versions up to {CHECKPOINT_VERSION}: upgrade binas"
        )
    found = record.get("kind")
    if kind is not None and found != kind:
        raise CheckpointError(f"{path} is a '{found}' checkpoint, expected a '{kind}' checkpoint")
    payload = record.get("payload")
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} is corrupt: its payload is {_describe(payload)}, not a dict")
    return payload


def _describe(obj: Any) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)}"
    if isinstance(obj, dict):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return f"a plain state_dict with {len(obj)} tensors"
        keys = ", ".join(repr(k) for k in list(obj)[:4])
        return f"a dict with keys {keys}{', ...' if len(obj) > 4 else ''}"
    return f"a {type(obj).__name__}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def capture_rng_state() -> dict[str, Any]:
    """The global Python / numpy / torch (and CUDA) RNG states, as checkpoint-safe plain data."""
    version, internal, gauss_next = random.getstate()
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # the global legacy RandomState is MT19937: always the tuple form
    name, keys, pos, has_gauss, cached = np_state
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` returned, so the next random draws repeat exactly.

    A CUDA state saved on a GPU machine is skipped, with a warning, when resuming without CUDA.
    """
    try:
        py, npy = state["python"], state["numpy"]
        random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
        keys = npy["keys"].cpu().numpy().astype(np.uint32)
        np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
        torch.set_rng_state(state["torch"].cpu())
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"saved RNG state is malformed: {type(exc).__name__}: {exc}") from None
    cuda_states = state.get("cuda")
    if cuda_states:
        if torch.cuda.is_available():
            n = min(len(cuda_states), torch.cuda.device_count())
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states[:n]])
        else:
            logger.warning("checkpoint has CUDA RNG states but CUDA is not available; not restored")
