"""`binas config ls|show NAME|cp NAME DEST`: the YAML presets shipped with binas (like torchtune's `tune ls/cp`)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="list, print or copy the shipped YAML config presets", description=__doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("ls", help="list the presets with a one-line description")
    ls.set_defaults(run=run_ls)
    show = actions.add_parser("show", help="print a preset (or any config file) as YAML")
    show.add_argument("name", metavar="NAME", help="preset name (see `binas config ls`) or a YAML file")
    show.set_defaults(run=run_show)
    cp = actions.add_parser("cp", help="copy a preset to a file you can edit")
    cp.add_argument("name", metavar="NAME", help="preset name")
    cp.add_argument("dest", metavar="DEST", help="destination file, or a folder to put NAME.yaml in")
    cp.add_argument("--force", action="store_true", help="overwrite DEST if it exists")
    cp.set_defaults(run=run_cp)


def run_ls(args: argparse.Namespace) -> int:
    from binas.config.preset_files import list_presets

    presets = list_presets()
    width = max((len(p.name) for p in presets), default=0)
    for preset in presets:
        print(f"{preset.name:<{width}}  {preset.description}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from binas.config.preset_files import resolve_config_path

    print(resolve_config_path(args.name).read_text(encoding="utf-8"), end="")
    return 0


def run_cp(args: argparse.Namespace) -> int:
    from binas.config.preset_files import copy_preset

    target = copy_preset(args.name, args.dest, force=args.force)
    print(f"copied {args.name} to {target}")
    return 0
