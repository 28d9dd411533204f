"""Search strategies. Importing this package registers every built-in strategy in `STRATEGIES`."""

from binas.engine.strategy import SearchContext, SearchStrategy
from binas.strategies import cpnas, darts, dcpnas, ddpnas, random_search  # noqa: F401  (registration side effect)
from binas.strategies.base import STRATEGIES, register_strategy, resolve_method_options

__all__ = ["STRATEGIES", "SearchContext", "SearchStrategy", "register_strategy", "resolve_method_options"]
