"""Search strategies. Importing this package registers every built-in strategy in `STRATEGIES`."""

from binas.strategies import cpnas, darts, dcpnas, ddpnas, random_search  # noqa: F401  (registration side effect)
from binas.strategies.base import STRATEGIES, SearchContext, SearchStrategy, register_strategy

__all__ = ["STRATEGIES", "SearchContext", "SearchStrategy", "register_strategy"]
