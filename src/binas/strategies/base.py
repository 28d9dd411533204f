"""The `STRATEGIES` registry, the one place `search.options` become a method's typed options, and the
pieces every strategy shares (the supernet factory, α entropy).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import Tensor

from binas.config.io import from_dict
from binas.config.schema import RunConfig
from binas.engine.runtime import place
from binas.engine.strategy import SearchContext, SearchStrategy
from binas.errors import ConfigError
from binas.quant.policy import BinarizationPolicy
from binas.registry import Registry
from binas.space.supernet import Supernet

STRATEGIES: Registry[type[SearchStrategy]] = Registry("search method")


def register_strategy(cls: type[SearchStrategy]) -> type[SearchStrategy]:
    """Class decorator: register a strategy under its `name`."""
    STRATEGIES.register(cls.name, cls)
    return cls


def resolve_method_options(cfg: RunConfig) -> RunConfig:
    """`cfg` with `search.options` as the chosen method's typed options (defaults filled in), checked once.

    The typed options stay in the config (YAML dumps write them as a mapping), so a second call is a no-op
    and every layer below reads the same object. Shared search keys the method does not use are errors,
    not silently ignored: `search.epochs` for methods with their own schedule, `search.binary` for
    methods that fix their supernets' precision (DCP-NAS: a real Parent and a 1-bit Child;
    CP-NAS: a 1-bit Child beside a real Parent; BNAS: 1-bit).
    """
    cls = STRATEGIES.get(cfg.search.method)
    if isinstance(cfg.search.options, cls.Config):
        return cfg
    if not cls.uses_search_epochs and cfg.search.epochs is not None:
        raise ConfigError(
            f"{cls.name} runs its own sampling schedule (see its options); search.epochs does not "
            "apply: leave it null (--set search.epochs=null)"
        )
    if not cls.uses_search_binary and cfg.search.binary is not None:
        raise ConfigError(
            f"{cls.name} fixes the precision of its supernets itself; search.binary does not apply: leave it null"
        )
    # An instance of the method's own options dataclass (`Config` is typed `type`), stored where the raw
    # mapping was: `search.options` is declared as that mapping, so the typed object goes in as Any.
    options: Any = from_dict(cls.Config, cfg.search.options, where="search.options")
    return dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, options=options))


def entropy_per_edge(weights: Tensor) -> float:
    """Mean entropy (nats) of the per-edge op distributions; log(M) means undecided, 0 means decided."""
    p = weights.detach().clamp_min(1e-12)
    return float(-(p * p.log()).sum(dim=-1).mean())


def build_supernet(ctx: SearchContext, *, binary: bool, partial_channels: int = 1) -> Supernet:
    """The search supernet of `ctx.space` on the run's device: real, or 1-bit with `space.policy`."""
    if ctx.space.kind != "darts":
        raise ConfigError(f"this search method supports only the darts cell space, not space.kind={ctx.space.kind!r}")
    policy = ctx.space.binary_policy() if binary else BinarizationPolicy.real()
    net = Supernet(
        ctx.space.supernet(partial_channels),
        num_classes=ctx.info.num_classes,
        in_channels=ctx.info.in_channels,
        policy=policy,
    )
    return place(net, ctx.runtime.device)
