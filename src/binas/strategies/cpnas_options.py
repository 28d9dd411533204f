"""Options of the CP-NAS and BNAS-style searches (`search.options`), with their defaults and checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from binas.errors import ConfigError
from binas.strategies.cpnas_schedule import IndicatorSign

#: Rounds T per pruning stage. Not recovered (spec A10: "BNAS-like values of about 3 are a guess"). T = 2
#: keeps the default digits search (70 samples) to about 4 minutes of one CPU core (measured: 250 s CPU).
DEFAULT_ROUNDS = 2
#: beta_P, the weight of the parent-child accuracy gap (spec A10: "1.0 is a reasonable start", best < 2).
DEFAULT_BETA_P = 1.0
#: Training batches per sampled architecture and supernet. Algorithm 9 trains "one epoch"; on the default
#: digits search split (719 images, batch 64) a pass is 12 batches. With 4, one sample costs about 1.8 s
#: of training and 1.3 s of validation (both supernets, one core), so T = 2 fits in a few minutes.
DEFAULT_TRAIN_STEPS = 4


@dataclass(frozen=True)
class SamplingOptions:
    """Options shared by CP-NAS and BNAS-style search.

    Attributes:
        rounds: T, rounds of K samplings without replacement before each pruning step.
        train_steps: training batches per sampled architecture in each supernet (None: one pass over the
            search training split, the "one epoch" of Algorithm 9).
        eval_batches: validation batches that give A_P and A_C (None: the whole validation split).
        max_samples: stop after this many sampled architectures (None: the full schedule); a stopped
            search returns its current best guess.
        ops: the candidate ops (None: all 8 DARTS ops, K = 8 as in Algorithm 9); e.g. leave out `none`.
    """

    rounds: int = DEFAULT_ROUNDS
    train_steps: int | None = DEFAULT_TRAIN_STEPS
    eval_batches: int | None = None
    max_samples: int | None = None
    ops: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CPNASOptions(SamplingOptions):
    """CP-NAS options.

    Attributes:
        beta_p: beta_P of Eq. 4.15 (0 gives the BNAS-style child-accuracy indicator). As printed,
            z = beta_P A_P + (1 - beta_P) A_C, so beta_P = 1 scores by the Parent's accuracy alone.
        indicator_sign: `as_printed` z = beta_P (A_P - A_C) + A_C, or `penalize_gap`
            z = A_C - beta_P (A_P - A_C) (spec A10).
    """

    beta_p: float = DEFAULT_BETA_P
    indicator_sign: IndicatorSign = "as_printed"


def check_options(options: Any, primitives: tuple[str, ...]) -> None:
    """Raise `ConfigError` (one line) for option values the search cannot run with."""
    for name in ("rounds", "train_steps", "eval_batches", "max_samples"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise ConfigError(f"search.options.{name} must be >= 1, got {value}")
    if getattr(options, "beta_p", 0.0) < 0:
        raise ConfigError(f"search.options.beta_p must be >= 0, got {options.beta_p}")
    if options.ops is not None:
        unknown = [op for op in options.ops if op not in primitives]
        if unknown:
            raise ConfigError(f"search.options.ops: unknown op(s) {unknown}; choose from {list(primitives)}")
        if len(set(options.ops)) < 2 or set(options.ops) <= {"none"}:
            raise ConfigError("search.options.ops needs at least 2 distinct ops, one of them not 'none'")


@dataclass(frozen=True)
class BNASOptions(SamplingOptions):
    """BNAS-style search options: CP-NAS's sampling and abandoning with beta_P fixed to 0."""
