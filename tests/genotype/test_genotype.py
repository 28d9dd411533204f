"""Genotype: construction, validation, JSON round trip, files, archid."""

from __future__ import annotations

import json
import random

import pytest

from binas.errors import BinasError, GenotypeError
from binas.genotype import Genotype, get_genotype

from .builders import random_genotype

DARTS_V2 = get_genotype("darts-v2")


@pytest.mark.parametrize("seed", range(100))
def test_json_round_trip_random_genotypes(seed: int) -> None:
    rng = random.Random(seed)
    genotype = random_genotype(rng, steps=rng.randint(1, 6))
    assert Genotype.from_json(genotype.to_json()) == genotype
    assert Genotype.from_dict(json.loads(json.dumps(genotype.to_dict()))) == genotype
    assert Genotype.from_json(genotype.to_json(indent=None)).archid == genotype.archid


@pytest.mark.parametrize("seed", range(20))
def test_file_and_darts_repr_round_trip(seed: int, tmp_path) -> None:
    genotype = random_genotype(random.Random(seed))
    assert Genotype.load(genotype.save(tmp_path / "sub" / "g.json")) == genotype
    assert Genotype.from_darts_repr(genotype.to_darts_repr()) == genotype


def test_lists_are_normalised_to_tuples_and_hashable() -> None:
    genotype = Genotype(
        normal=[["sep_conv_3x3", 0], ["skip_connect", 1]],
        normal_concat=range(2, 3),
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1)],
        reduce_concat=[2],
    )
    assert genotype.normal == (("sep_conv_3x3", 0), ("skip_connect", 1))
    assert genotype.normal_concat == (2,)
    assert genotype.steps == 1
    assert hash(genotype) == hash(Genotype.from_dict(genotype.to_dict()))


def test_to_dict_layout() -> None:
    data = DARTS_V2.to_dict()
    assert list(data) == ["normal", "normal_concat", "reduce", "reduce_concat"]
    assert data["normal"][0] == ["sep_conv_3x3", 0]
    assert data["normal_concat"] == [2, 3, 4, 5]


def test_accessors_and_str() -> None:
    assert DARTS_V2.steps == 4
    assert DARTS_V2.cell("reduce") == DARTS_V2.reduce
    assert DARTS_V2.concat("normal") == (2, 3, 4, 5)
    assert DARTS_V2.node_inputs("normal")[5] == (("skip_connect", 0), ("dil_conv_3x3", 2))
    text = str(DARTS_V2)
    assert "\n" not in text and "5=skip_connect(0)+dil_conv_3x3(2)" in text
    with pytest.raises(GenotypeError, match="unknown cell kind"):
        DARTS_V2.cell("middle")


def test_archid_is_stable_and_discriminates() -> None:
    assert DARTS_V2.archid == get_genotype("darts-v2").archid
    assert len(DARTS_V2.archid) == 12 and int(DARTS_V2.archid, 16) >= 0
    assert DARTS_V2.archid != get_genotype("darts-v1").archid
    swapped = Genotype(DARTS_V2.reduce, DARTS_V2.reduce_concat, DARTS_V2.normal, DARTS_V2.normal_concat)
    assert swapped.archid != DARTS_V2.archid


def _with(**changes) -> dict:
    data = DARTS_V2.to_dict()
    data.update(changes)
    return data


BAD_PAIRS = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 3 + [("skip_connect", 0)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(normal=[["conv_7x1_1x7", 0]] + DARTS_V2.to_dict()["normal"][1:]), "unknown op 'conv_7x1_1x7'"),
        (_with(normal=DARTS_V2.to_dict()["normal"][:-1] + [["sep_conv_3x3", 5]]), "node 5 cannot take input"),
        (_with(reduce=[["max_pool_3x3", -1]] + DARTS_V2.to_dict()["reduce"][1:]), "cannot take input"),
        (_with(normal=BAD_PAIRS), "7 pairs"),
        (_with(normal=[]), "0 pairs"),
        (_with(reduce=DARTS_V2.to_dict()["reduce"][:6]), "same number of intermediate nodes"),
        (_with(normal_concat=[2, 3, 6]), r"node\(s\) \[6\]"),
        (_with(normal_concat=[2, 2]), "repeats"),
        (_with(reduce_concat=[]), "empty"),
        (_with(normal_concat=[2.0, 3]), "integer"),
        (_with(normal_concat=[True, 3]), "integer"),
        (_with(normal=[["sep_conv_3x3", "0"]] * 8), "pair 0"),
        (_with(normal=[["sep_conv_3x3"]] * 8), "pair 0"),
        (_with(normal="sep_conv_3x3"), "must be a list"),
        (
            {k: v for k, v in DARTS_V2.to_dict().items() if k != "reduce_concat"},
            r"missing key\(s\) \['reduce_concat'\]",
        ),
        (_with(extra=1), r"unknown key\(s\) \['extra'\]"),
        ([1, 2], "JSON object"),
    ],
)
def test_from_dict_rejects(data: object, message: str) -> None:
    with pytest.raises(GenotypeError, match=message) as info:
        Genotype.from_dict(data)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, BinasError)


def test_from_json_rejects_invalid_json() -> None:
    with pytest.raises(GenotypeError, match="invalid genotype JSON"):
        Genotype.from_json('{"normal": [')


def test_load_missing_file(tmp_path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(GenotypeError, match="not found") as info:
        Genotype.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid genotype JSON"),
        ('{"normal": []}', "missing key"),
        ("", "invalid genotype JSON"),
    ],
)
def test_load_bad_file_names_the_path(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(GenotypeError, match=message) as info:
        Genotype.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
