"""`binas` command line: one module per subcommand (`COMMANDS`); `BinasError`s become one line, exit 2."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from binas.cli.console import configure_console, console_level
from binas.engine.metrics_log import metric_sinks
from binas.engine.tensorboard import tensorboard_factory
from binas.errors import BinasError
from binas.version import __version__

#: Exit status for usage and input errors (argparse uses 2 as well).
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a process it terminated


#: The modules of `binas.cli` that define a subcommand (`add_parser(subparsers)`), in `binas --help` order.
COMMANDS = (
    "search",
    "train",
    "reid",
    "detect",
    "run",
    "evaluate",
    "profile",
    "export",
    "deploy",
    "generate",
    "latency_table",
    "plot",
    "compare",
    "config_cmd",
)


def command_modules() -> list[ModuleType]:
    """The subcommand modules, in `COMMANDS` order."""
    return [importlib.import_module(f"binas.cli.{name}") for name in COMMANDS]


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
    level = console_level(quiet=getattr(args, "quiet", False), verbose=getattr(args, "verbose", False))
    # Under torchrun only rank 0 talks; the other ranks show warnings and errors (each line once, not N times).
    configure_console(level if os.environ.get("RANK", "0") == "0" else max(level, logging.WARNING))
    previous = _on_sigterm_raise()
    try:
        # Every metrics.jsonl the command writes is mirrored to TensorBoard when it is installed (installed
        # here once; the library workflows never add a second sink).
        with metric_sinks(tensorboard_factory):
            return int(args.run(args) or 0)
    except BinasError as exc:
        print(f"binas {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (`Terminated`): the last checkpoint is kept
        terminated = isinstance(exc, Terminated)
        print(f"binas {args.command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except (MemoryError, RuntimeError) as exc:
        if out_of_memory(exc):
            print(f"binas {args.command}: error: out of memory ({_first_line(exc)}); {MEMORY_HINT}", file=sys.stderr)
        elif peer_lost(exc):
            print(
                f"binas {args.command}: error: another torchrun process stopped ({_first_line(exc)}); this one "
                "stops too (resume with --resume RUN_DIR)",
                file=sys.stderr,
            )
        else:
            raise
        return EXIT_USAGE
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so the command stops as on Ctrl-C: it says so and how to resume."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _on_sigterm_raise() -> Any:
    """Make SIGTERM raise `Terminated` for the command's duration (main thread only); the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


#: What to lower when a run does not fit in memory.
MEMORY_HINT = (
    "lower search.batch_size / train.batch_size, or the network (space.channels, space.layers, "
    "train.net.channels, train.net.layers); the last checkpoint is kept"
)


def out_of_memory(exc: BaseException) -> bool:
    """A failed allocation: Python's MemoryError, CUDA's OutOfMemoryError, or the CPU allocator's error."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text


#: What a collective reports when a peer process died or stopped answering (Gloo, NCCL, the store).
PEER_LOST = (
    "connection closed by peer",
    "connection reset by peer",
    "broken pipe",
    "timed out",
    "timeout",
    "nccl communicator was aborted",
    "socket closed",
)


def peer_lost(exc: BaseException) -> bool:
    """A torch.distributed collective failed because another rank is gone (only inside a process group)."""
    if os.environ.get("WORLD_SIZE", "1") in ("", "1"):
        return False
    text = str(exc).lower()
    return type(exc).__name__ == "DistBackendError" or any(k in text for k in PEER_LOST)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
