"""Console logging of the `binas` command: a stderr handler whose level `--quiet`/`--verbose` set."""

from __future__ import annotations

import logging

from binas.engine.run_log import PACKAGE_LOGGER

CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"


def console_level(*, quiet: bool = False, verbose: bool = False) -> int:
    """The console level for `--quiet` (warnings only), `--verbose` (debug) or neither (info)."""
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose else logging.INFO


def configure_console(level: int) -> logging.Handler:
    """Console logging for the CLI: a stderr handler at `level` on the root logger, while the `binas`
    logger itself passes everything down to DEBUG so `log.txt` files get the full story. Calling it
    again (e.g. `main()` run twice in one process) replaces the handler it installed before."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_binas_console", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    handler._binas_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)  # other libraries keep the root's WARNING level
    logging.getLogger(PACKAGE_LOGGER).setLevel(logging.DEBUG)
    return handler
