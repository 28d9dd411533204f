"""Cell diagrams: DOT text and matplotlib PNGs."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from binas.errors import GenotypeError
from binas.genotype import Genotype, get_genotype, list_genotypes
from binas.genotype.plot import plot_cell, save_cell_diagrams, to_dot

from .builders import random_genotype

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", list_genotypes())
@pytest.mark.parametrize("kind", ["normal", "reduce"])
def test_dot_lists_every_op_edge(name: str, kind: str) -> None:
    g = get_genotype(name)
    dot = to_dot(g, kind)
    assert dot.startswith(f'digraph "{kind}_cell"') and dot.rstrip().endswith("}")
    for op, _ in g.cell(kind):
        assert f'label="{op}"' in dot
    assert dot.count("->") == len(g.cell(kind)) + len(g.concat(kind))
    for node in ("c_{k-2}", "c_{k-1}", '"0"', '"3"', "c_{k}"):
        assert node in dot
    assert dot.count('{k}" [style=dashed]') == len(g.concat(kind))


def test_dot_edge_from_input() -> None:
    dot = to_dot(get_genotype("darts-v2"), "normal")
    assert '"c_{k-2}" -> "0" [label="sep_conv_3x3"' in dot
    assert '"0" -> "3" [label="dil_conv_3x3"' in dot


def test_save_cell_diagrams_writes_non_empty_files(tmp_path: Path) -> None:
    paths = save_cell_diagrams(get_genotype("dcp-nas-l"), tmp_path / "diagrams")
    assert sorted(p.name for p in paths) == ["normal.dot", "normal.png", "reduce.dot", "reduce.png"]
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC
            assert path.stat().st_size > 10_000  # a real drawing, not an empty canvas


def test_plot_cell_rejects_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(GenotypeError, match="unknown cell kind"):
        plot_cell(get_genotype("darts-v2"), "middle", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_core_import_does_not_load_matplotlib() -> None:
    import subprocess

    code = "import binas.genotype, sys; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("seed", range(3))
def test_plot_random_genotypes_with_repeated_inputs(seed: int, tmp_path: Path) -> None:
    genotype = random_genotype(random.Random(seed), steps=seed + 2)
    path = plot_cell(genotype, "normal", tmp_path / "cell.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    repeated = Genotype([("skip_connect", 0), ("sep_conv_3x3", 0)], [2], [("max_pool_3x3", 1)] * 2, [2])
    assert plot_cell(repeated, "reduce", tmp_path / "repeated.png").stat().st_size > 0
    assert to_dot(repeated, "normal").count('"c_{k-2}" -> "0"') == 2
