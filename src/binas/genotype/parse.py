"""`parse_genotype`: turn whatever a user passes as `--genotype` into a `Genotype`.

Accepted, tried in this order: a `Genotype` (returned as is), a zoo name (`darts-v2`), a path to a
JSON file, a run directory holding `genotype.json`, inline JSON text (`{"normal": ...}`), or a DARTS
`Genotype(normal=[...], ...)` string. Anything else is a one-line `GenotypeError` saying what was tried.
"""

from __future__ import annotations

from pathlib import Path

from binas.errors import GenotypeError
from binas.genotype.genotype import Genotype
from binas.genotype.zoo import GENOTYPES
from binas.run_files import GENOTYPE_FILE

#: The file a search run writes into its run directory (architecture.md, "Search engine").
#: Characters of an unrecognised spec echoed back in the error message.
ECHO_CHARS = 60


def _echo(spec: str) -> str:
    return repr(spec if len(spec) <= ECHO_CHARS else spec[:ECHO_CHARS] + "...")


def parse_genotype(spec: str | Path | Genotype) -> Genotype:
    """Resolve a zoo name, a .json file, a run directory, JSON text or a DARTS repr string."""
    if isinstance(spec, Genotype):
        return spec
    if isinstance(spec, Path):
        return _from_path(spec)
    if not isinstance(spec, str):
        raise GenotypeError(f"a genotype spec must be a string or path, got {type(spec).__name__}")
    text = spec.strip()
    if text in GENOTYPES:
        return GENOTYPES.get(text).genotype
    if text.startswith("{"):
        return Genotype.from_json(text)
    if "Genotype(" in text:
        return Genotype.from_darts_repr(text)
    if text.endswith(".json") or _exists(text):
        return _from_path(Path(text).expanduser())
    raise GenotypeError(
        f"cannot read genotype {_echo(text)}: not a zoo name ({', '.join(GENOTYPES.names())}), "
        "an existing .json file or run directory, a JSON object, or a Genotype(...) string"
    )


def _exists(text: str) -> bool:
    """Whether `text` names an existing path; names the OS cannot even stat count as missing."""
    if not text or "\n" in text:
        return False
    try:
        return Path(text).expanduser().exists()
    except (OSError, ValueError):
        return False


def _from_path(path: Path) -> Genotype:
    """Load `path`, or `path/genotype.json` when `path` is a (run) directory."""
    if path.is_dir():
        candidate = path / GENOTYPE_FILE
        if not candidate.is_file():
            raise GenotypeError(f"run directory {path} has no {GENOTYPE_FILE}")
        return Genotype.load(candidate)
    return Genotype.load(path)
