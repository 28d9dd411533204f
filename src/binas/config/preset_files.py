"""The YAML configs shipped with binas (`binas/config/presets/*.yaml`, package data): list, find, copy.

A preset is named by its file stem (`dcpnas_cifar10_search`); `--config NAME` accepts a preset name
wherever it accepts a file (see :func:`resolve_config_path`). The first `# ` comment line of a preset
is its one-line description (shown by `binas config ls`).
"""

from __future__ import annotations

import difflib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from binas.config.io import load_config
from binas.config.schema import RunConfig
from binas.errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent / "presets"
PRESET_SUFFIX = ".yaml"
_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Preset:
    """One shipped config: its name (file stem), path and one-line description."""

    name: str
    path: Path
    description: str

    def text(self) -> str:
        """The YAML text, comments included."""
        return self.path.read_text(encoding="utf-8")


def _description(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def list_presets() -> list[Preset]:
    """Every shipped preset, sorted by name."""
    return [Preset(p.stem, p, _description(p)) for p in sorted(PRESET_DIR.glob(f"*{PRESET_SUFFIX}"))]


def preset_names() -> list[str]:
    return [p.name for p in list_presets()]


def get_preset(name: str) -> Preset:
    """The preset called `name` (with or without `.yaml`); a one-line ConfigError listing the choices."""
    stem = name[: -len(PRESET_SUFFIX)] if name.endswith(PRESET_SUFFIX) else name
    for preset in list_presets():
        if preset.name == stem:
            return preset
    names = preset_names()
    close = difflib.get_close_matches(stem, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f"; presets: {', '.join(names)}"
    raise ConfigError(f"no preset named '{name}'{hint}")


def resolve_config_path(name_or_path: str | Path) -> Path:
    """What `--config X` means: an existing file `X`, else the preset named `X`.

    Raises a one-line ConfigError when `X` is neither (a path-looking `X` is reported as a missing
    file, a bare name as an unknown preset).
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        raise ConfigError(f"--config {name_or_path}: is a directory, not a YAML file")
    text = str(name_or_path)
    looks_like_path = "/" in text or "\\" in text or path.suffix in _YAML_SUFFIXES and path.stem not in preset_names()
    if looks_like_path:
        raise ConfigError(f"config file not found: {name_or_path} (`binas config ls` lists the presets)")
    return get_preset(text).path


def load_named_config(name_or_path: str | Path | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """The `RunConfig` of a preset name or YAML file (None: the defaults) with `a.b=c` overrides applied:
    what `--config X --set a.b=c` gives on the command line."""
    path = resolve_config_path(name_or_path) if name_or_path is not None else None
    return load_config(RunConfig, path, overrides)


def copy_preset(name: str, dest: str | Path, *, force: bool = False) -> Path:
    """Copy preset `name` to `dest` (a file, or a folder to put `NAME.yaml` in); returns the new file.

    Refuses to overwrite an existing file unless `force`, so an edited copy is never lost.
    """
    preset = get_preset(name)
    dest = Path(dest)
    target = dest / preset.path.name if dest.is_dir() else dest
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists (use --force to overwrite)")
    if not target.parent.is_dir():
        raise ConfigError(f"cannot copy to {target}: folder {target.parent} does not exist")
    shutil.copyfile(preset.path, target)
    return target
