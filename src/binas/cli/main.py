"""`binas` command line: one module per subcommand; `BinasError`s become one line and exit status 2."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from binas import __version__
from binas.errors import BinasError

#: Exit status for usage and input errors (argparse uses 2 as well).
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def command_modules() -> list[ModuleType]:
    """Every module of `binas.cli` that defines `add_parser(subparsers)`: one module per subcommand."""
    import binas.cli as package

    modules = [importlib.import_module(f"binas.cli.{m.name}") for m in pkgutil.iter_modules(package.__path__)]
    return [m for m in modules if hasattr(m, "add_parser")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="binas", description="Neural architecture search for 1-bit CNNs (DCP-NAS, CP-NAS, DDPNAS, ...)."
    )
    parser.add_argument("--version", action="version", version=f"binas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in command_modules():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `binas` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except BinasError as exc:
        print(f"binas {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"binas {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
