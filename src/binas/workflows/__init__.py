"""The workflows behind the `binas` commands, one module each, as library functions.

`search.search` (`binas search`), `train.train` (`binas train`), `run.run` (`binas run`: search, retrain,
report) and `compare.compare_runs` (`binas compare`). Each takes a resolved `RunConfig` (or run
directories) and writes a run directory; the CLI only parses flags into a config and prints the result.
The same functions are `binas.search`, `binas.train`, `binas.run` and `binas.compare_runs`.
"""
