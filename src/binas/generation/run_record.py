"""What network generation reads from a DDPNAS run directory: the config and the learned theta.

`theta.json` (written at the end of a search) is preferred; an interrupted search still has its last
checkpoint, whose DDPNAS state carries the same record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from binas.config.schema import RunConfig
from binas.engine.rundir import load_run_config
from binas.errors import BinasError
from binas.generation.budgets import GenerationError
from binas.quant.policy import BinarizationPolicy
from binas.run_files import CHECKPOINT_FILE

THETA_FILE = "theta.json"
METHOD = "ddpnas"


@dataclass
class SearchRecord:
    """A finished (or interrupted) DDPNAS search, as generation needs it.

    Attributes:
        run_dir: the run directory.
        config: its resolved config.
        space: `darts` or `mobilenet`.
        theta: (E x K) learned distribution; alive: which ops survived pruning.
        op_names: candidate names per row of theta.
        num_classes, in_channels, image_size: the data the supernet was searched on.
        binary: whether the 1-bit supernet was searched (generated networks use the same policy).
    """

    run_dir: Path
    config: RunConfig
    space: str
    theta: np.ndarray
    alive: np.ndarray
    op_names: list[list[str]]
    num_classes: int
    in_channels: int
    image_size: int
    binary: bool

    def policy(self) -> BinarizationPolicy:
        return self.config.space.binary_policy() if self.binary else BinarizationPolicy.real()


def _theta_data(run_dir: Path) -> dict[str, Any]:
    path = run_dir / THETA_FILE
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise GenerationError(f"cannot read {path}: {err}") from None
    if (run_dir / CHECKPOINT_FILE).is_file():
        from binas.storage.checkpoint import load_checkpoint

        state = load_checkpoint(run_dir / CHECKPOINT_FILE, kind="search").get("strategy", {})
        if "theta_record" in state:
            return state["theta_record"]
    raise GenerationError(
        f"{run_dir} has neither {THETA_FILE} nor a DDPNAS checkpoint; run `binas search --method ddpnas` first"
    )


def load_search_record(run_dir: str | Path) -> SearchRecord:
    """Read a DDPNAS run directory; anything missing or of another method is a `GenerationError`."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GenerationError(f"run directory not found: {run_dir}")
    try:
        config = load_run_config(run_dir)
    except BinasError as err:
        raise GenerationError(f"{run_dir} is not a search run directory: {err}") from None
    if config.search.method != METHOD:
        raise GenerationError(
            f"{run_dir} is a '{config.search.method}' search; `binas generate` needs a "
            f"'{METHOD}' run (it generates from DDPNAS's learned distribution)"
        )
    data = _theta_data(run_dir)
    try:
        info = data["info"]
        return SearchRecord(
            run_dir=run_dir,
            config=config,
            space=str(data["space"]),
            theta=np.asarray(data["theta"], dtype=np.float64),
            alive=np.asarray(data["alive"], dtype=bool),
            op_names=[list(map(str, row)) for row in data["op_names"]],
            num_classes=int(info["num_classes"]),
            in_channels=int(info["in_channels"]),
            image_size=int(info["image_size"]),
            binary=bool(data["binary"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise GenerationError(f"{run_dir}/{THETA_FILE} is malformed: {err}") from None
