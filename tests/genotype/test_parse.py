"""parse_genotype: zoo names, files, run directories, JSON text and DARTS strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from binas.errors import GenotypeError
from binas.genotype import get_genotype, parse_genotype

G = get_genotype("pc-darts")


def test_zoo_name() -> None:
    assert parse_genotype("pc-darts") == G
    assert parse_genotype(" pc-darts ") == G


def test_json_file_and_run_dir(tmp_path: Path) -> None:
    path = G.save(tmp_path / "run" / "genotype.json")
    assert parse_genotype(str(path)) == G
    assert parse_genotype(path) == G
    assert parse_genotype(str(tmp_path / "run")) == G
    assert parse_genotype(tmp_path / "run") == G


def test_json_text_darts_text_and_instance() -> None:
    assert parse_genotype(G.to_json()) == G
    assert parse_genotype(G.to_darts_repr()) == G
    assert parse_genotype(G) is G


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("darts-v9", "cannot read genotype 'darts-v9': not a zoo name"),
        ("missing/genotype.json", "genotype file not found"),
        ('{"normal": 1}', "missing key"),
        ("Genotype(normal=open('x'))", "unsupported"),
        ("", "cannot read genotype"),
        ("x" * 500, r"\.\.\.'"),
    ],
)
def test_errors_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(GenotypeError, match=message) as info:
        parse_genotype(spec)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_run_dir_without_genotype(tmp_path: Path) -> None:
    with pytest.raises(GenotypeError, match="has no genotype.json"):
        parse_genotype(str(tmp_path))


def test_wrong_type() -> None:
    with pytest.raises(GenotypeError, match="string or path"):
        parse_genotype(3)  # type: ignore[arg-type]
