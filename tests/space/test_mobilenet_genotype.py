"""`MobileGenotype`: the DDPNAS gene format as validated JSON data."""

from __future__ import annotations

import pytest

from binas.errors import GenotypeError
from binas.genotype.mobilenet import MobileGenotype, is_mobile_genotype_dict

GENE = ((7, 6), (7, 3), "zero", (5, 6), (3, 1))


def test_json_round_trip_and_parse_forms(tmp_path):
    g = MobileGenotype(GENE)
    assert MobileGenotype.from_json(g.to_json()) == g == MobileGenotype.from_json(g.to_json(indent=None))
    assert g.to_dict() == {"space": "mobilenet", "blocks": [[7, 6], [7, 3], "zero", [5, 6], [3, 1]]}
    path = g.save(tmp_path / "run" / "genotype.json")
    assert MobileGenotype.load(path) == g == MobileGenotype.parse(tmp_path / "run") == MobileGenotype.parse(GENE)
    assert MobileGenotype.parse(g.to_json()) == g and is_mobile_genotype_dict(g.to_dict())
    assert g.num_skipped == 1


def test_archid_is_stable_and_str_names_the_blocks():
    g = MobileGenotype(GENE)
    assert g.archid == MobileGenotype(list(map(lambda b: list(b) if b != "zero" else b, GENE))).archid
    assert g.archid != MobileGenotype(GENE[::-1]).archid and len(g.archid) == 12
    assert str(g) == "mobilenet: 7x7_MBConv6 7x7_MBConv3 zero 5x5_MBConv6 3x3_MBConv1"


@pytest.mark.parametrize(
    "blocks, message",
    [
        ([], "no blocks"),
        ([[4, 6]], "odd kernel"),
        ([[3, 0]], "expand"),
        ([[3, 6, 1]], "must be"),
        (["skip"], "must be"),
        ([[True, 3]], "must be"),
        ("zero", "must be a list"),
    ],
)
def test_invalid_blocks_are_one_line_errors(blocks, message):
    with pytest.raises(GenotypeError, match=message):
        MobileGenotype(blocks)


def test_bad_json_and_darts_files_are_rejected(tmp_path):
    with pytest.raises(GenotypeError, match="invalid"):
        MobileGenotype.from_json("{not json")
    with pytest.raises(GenotypeError, match="space"):
        MobileGenotype.from_dict({"normal": [], "normal_concat": []})
    with pytest.raises(GenotypeError, match="unknown key"):
        MobileGenotype.from_dict({"space": "mobilenet", "blocks": [[3, 3]], "extra": 1})
    with pytest.raises(GenotypeError, match="mobile genotype file not found"):
        MobileGenotype.load(tmp_path / "missing.json")
