"""Options every `binas` command shares, and turning them into a `RunConfig` and a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the config package imports torch; `binas --version` and `--help` should not
    from binas.config.schema import RunConfig

T = TypeVar("T")


def positive_int(text: str) -> int:
    """An argparse type: a positive integer (argparse reports anything else as a one-line usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """`--config FILE.yaml --set key=value ... --seed N --device D --out DIR --quiet`."""
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML config file or preset name (`binas config ls`)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set search.epochs=5 (repeatable)",
    )
    parser.add_argument("--seed", type=int, help="random seed (config key `seed`)")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N (config key `device`)")
    parser.add_argument("--out", metavar="DIR", help="write results here (default: a new runs/<date>-... dir)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug messages")


def resolve_config(args: argparse.Namespace, shortcuts: dict[str, Any]) -> RunConfig:
    """YAML file, then `--set` overrides, then the command's own flags (`shortcuts`: dotted key -> value)."""
    from binas.config.schema import RunConfig

    return resolve_typed_config(RunConfig, args, shortcuts)


def resolve_typed_config(cls: type[T], args: argparse.Namespace, shortcuts: dict[str, Any]) -> T:
    """`resolve_config` for any top-level config dataclass (`RunConfig`, `DetectConfig`, `ReidConfig`):
    `--config` (a YAML file or a preset), then `--set`, then `--seed`, `--device` and `shortcuts` (None: not
    given)."""
    from binas.config.io import apply_overrides, from_dict, load_yaml
    from binas.config.preset_files import resolve_config_path

    data = load_yaml(resolve_config_path(args.config)) if args.config else {}
    data = apply_overrides(data, args.overrides)
    flags = {"seed": args.seed, "device": args.device, **shortcuts}
    data = apply_overrides(data, [f"{k}={yaml_value(v)}" for k, v in flags.items() if v is not None])
    return from_dict(cls, data)


def search_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys of the flags `binas search` and `binas run` share (None: not given)."""
    return {
        "search.method": args.method,
        "data.name": args.dataset,
        "data.data_dir": args.data_dir,
        "search.epochs": args.epochs,
        "search.binary": args.binary,
    }


def yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        import json

        return json.dumps(str(value))
    return str(value)
