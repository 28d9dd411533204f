"""`binas` command line: one module per subcommand; `BinasError`s become one line and exit status 2."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from binas import __version__
from binas.engine.metrics_log import metric_sinks
from binas.errors import BinasError
from binas.logs import configure_console, console_level, tensorboard_factory

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
    configure_console(console_level(quiet=getattr(args, "quiet", False), verbose=getattr(args, "verbose", False)))
    try:
        # Every metrics.jsonl written by the command is mirrored to TensorBoard when it is installed.
        with metric_sinks(tensorboard_factory):
            return int(args.run(args) or 0)
    except BinasError as exc:
        print(f"binas {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"binas {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
