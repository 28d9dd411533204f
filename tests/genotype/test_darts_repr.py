"""Reading published `Genotype(...)` strings with the restricted AST walker (never eval)."""

from __future__ import annotations

import pytest

from binas.errors import GenotypeError
from binas.genotype import Genotype, get_genotype

# DARTS_V2 exactly as printed in DARTS's cnn/genotypes.py (Liu et al., 2019).
DARTS_V2_TEXT = (
    "DARTS_V2 = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), "
    "('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), "
    "('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)

# The DCP-NAS release's per-node nested form (spec §2.4, DDPNAS_MCN_2), with range(2, 6).
DCP_NESTED_TEXT = """
Genotype(
    normal=[
        [('sep_conv_5x5', 1), ('max_pool_3x3', 0)],
        [('dil_conv_3x3', 2), ('skip_connect', 0)],
        [('sep_conv_3x3', 3), ('avg_pool_3x3', 1)],
        [('dil_conv_3x3', 4), ('avg_pool_3x3', 3)]
    ],
    normal_concat=range(2, 6),
    reduce=[
        [('max_pool_3x3', 0), ('sep_conv_3x3', 1)],
        [('dil_conv_3x3', 1), ('sep_conv_3x3', 0)],
        [('max_pool_3x3', 1), ('dil_conv_5x5', 2)],
        [('dil_conv_5x5', 2), ('sep_conv_5x5', 1)]],
    reduce_concat=range(2, 6))
"""


def test_reads_darts_v2() -> None:
    genotype = Genotype.from_darts_repr(DARTS_V2_TEXT)
    assert genotype == get_genotype("darts-v2")
    # Without the assignment, and with range(...) for the concat lists.
    bare = DARTS_V2_TEXT.split("= ", 1)[1].replace("[2, 3, 4, 5]", "range(2, 6)")
    assert Genotype.from_darts_repr(bare) == genotype


def test_reads_nested_dcp_form() -> None:
    assert Genotype.from_darts_repr(DCP_NESTED_TEXT) == get_genotype("dcp-nas-l")


def test_positional_arguments() -> None:
    g = get_genotype("pc-darts")
    text = f"Genotype({list(g.normal)}, range(2, 6), {list(g.reduce)}, [2, 3, 4, 5])"
    assert Genotype.from_darts_repr(text) == g


def test_invalid_cell_in_valid_syntax_is_a_genotype_error() -> None:
    with pytest.raises(GenotypeError, match="unknown op 'conv_7x1_1x7'"):
        Genotype.from_darts_repr(DARTS_V2_TEXT.replace("dil_conv_3x3", "conv_7x1_1x7"))


PWNED = "binas_genotype_pwned"
MALICIOUS = [
    "__import__('os').system('x')",
    f"__import__('os').system('touch {PWNED}')",
    f"Genotype(normal=__import__('os').system('touch {PWNED}'), normal_concat=[2], reduce=[], reduce_concat=[2])",
    DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "[2, 3, 4, __import__('os').getpid()]", 1),
    DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', (lambda: 2)())"),
    DARTS_V2_TEXT.replace("Genotype(", "genotypes.Genotype("),
    DARTS_V2_TEXT.replace("Genotype(", "eval(", 1),
    DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 1 + 1)"),
    DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_' + 'conv_3x3', 2)"),
    DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "[i for i in range(2, 6)]", 1),
    DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "list(range(2, 6))", 1),
    DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "range(2, 10**9)", 1),
    DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "range(start=2, stop=6)", 1),
    DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "[2, 3, 4, x]", 1),
    DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "f'{2}'", 1),
    DARTS_V2_TEXT + "; import os",
    "import os",
    "Genotype(**{'normal': []})",
    "Genotype(normal=[], normal_concat=[2], reduce=[], reduce_concat=[2], extra=[1])",
    "Genotype(normal=[], normal=[], normal_concat=[2], reduce=[], reduce_concat=[2])",
    "Genotype(normal=[])",
    "Genotype(",
    "",
    "Genotype(\x00)",
    "[" * 200 + "]" * 200,
    "Genotype(normal=" + "[" * 50 + "]" * 50 + ", normal_concat=[2], reduce=[], reduce_concat=[2])",
    "x" * 30_000,
]


@pytest.mark.parametrize("text", MALICIOUS)
def test_rejects_anything_but_literals(text: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GenotypeError) as info:
        Genotype.from_darts_repr(text)
    assert "\n" not in str(info.value)
    assert not (tmp_path / PWNED).exists()


def test_rejects_non_string() -> None:
    with pytest.raises(GenotypeError, match="must be str"):
        Genotype.from_darts_repr(b"Genotype()")  # type: ignore[arg-type]
