"""Budgets for network generation (`--flops 300M`, `--params 3.5M`, `--latency-ms 12`) and their errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from binas.errors import BinasError

Metric = Literal["flops", "ops", "params", "latency_ms"]
METRICS: tuple[str, ...] = ("flops", "ops", "params", "latency_ms")
#: Decimal suffixes accepted in budgets ("300M" = 300e6), as the profiler prints them.
SUFFIXES: dict[str, float] = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}
_AMOUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgG]?)\s*$")


class GenerationError(BinasError):
    """Network generation cannot do what was asked (no network meets a budget, a bad run directory ...)."""


def parse_amount(text: str) -> float:
    """`'300M'` -> 3e8, `'3.5M'` -> 3.5e6, `'12'` -> 12.0; anything else is a `GenerationError`."""
    match = _AMOUNT.match(str(text))
    if not match:
        raise GenerationError(f"cannot read budget '{text}': use a number with an optional K, M or G suffix, e.g. 300M")
    value = float(match.group(1)) * SUFFIXES[match.group(2).upper()]
    if value <= 0:
        raise GenerationError(f"budget '{text}' must be positive")
    return value


def format_amount(value: float) -> str:
    """Compact human form: 3.1e8 -> '310M', 12.5 -> '12.5'."""
    for suffix in ("G", "M", "K"):
        if value >= SUFFIXES[suffix]:
            return f"{value / SUFFIXES[suffix]:.4g}{suffix}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class Budget:
    """An upper bound on one measured quantity of a generated network."""

    metric: str
    value: float

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise GenerationError(f"unknown budget metric '{self.metric}'; choose one of: {', '.join(METRICS)}")

    @property
    def label(self) -> str:
        """File-name-safe label: `flops-300M`, `params-3.5M`, `latency-12ms`."""
        if self.metric == "latency_ms":
            return f"latency-{self.value:.4g}ms"
        return f"{self.metric}-{format_amount(self.value)}"

    def allows(self, cost: float) -> bool:
        return cost <= self.value
