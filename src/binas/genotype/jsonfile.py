"""JSON text and files for the genotype types (cell genotypes and mobile block genotypes): one reader and
writer, so both report a bad file the same way (`GenotypeError`, one line naming the file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar

from binas.errors import GenotypeError

T = TypeVar("T", bound="JsonFile")


class JsonFile:
    """Mixin for a class with `to_json()` and `from_dict()`: `from_json`, `save`, `load`.

    `kind` names the type in error messages; with `default_file` set, `load(directory)` reads
    `directory/default_file` (e.g. a run directory's genotype).
    """

    kind: ClassVar[str] = "genotype"
    default_file: ClassVar[str | None] = None

    if TYPE_CHECKING:  # what the mixin needs of its class (each genotype type defines both)

        def to_json(self, indent: int | None = 2) -> str: ...

        @classmethod
        def from_dict(cls: type[T], data: object) -> T: ...

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        """Parse the `to_json` form; invalid JSON or content raises `GenotypeError`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise GenotypeError(f"invalid {cls.kind} JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        """Write the JSON form to `path` (parent directories are created); return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls: type[T], path: str | Path) -> T:
        """Read a JSON file; a missing, unreadable or invalid file raises `GenotypeError`."""
        path = Path(path)
        if cls.default_file is not None and path.is_dir():
            path = path / cls.default_file
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise GenotypeError(f"{cls.kind} file not found: {path}") from None
        except IsADirectoryError:
            raise GenotypeError(f"{cls.kind} path is a directory, not a JSON file: {path}") from None
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
            raise GenotypeError(f"cannot read {cls.kind} file {path}: {reason}") from None
        try:
            return cls.from_json(text)
        except GenotypeError as err:
            raise GenotypeError(f"{path}: {err}") from None
