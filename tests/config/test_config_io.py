"""Strict config loading: coercions, one-line errors naming the dotted path, YAML files, overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from binas.config.io import apply_overrides, dump_yaml, from_dict, load_config, load_yaml, to_dict
from binas.errors import ConfigError


@dataclass
class DartsToy:
    arch_lr: float = 3e-4
    hessian: Literal["ggn", "exact_hvp"] = "ggn"
    unrolled: bool = False


@dataclass
class SearchToy:
    epochs: int = 5
    darts: DartsToy = field(default_factory=DartsToy)
    extra: DartsToy | None = None
    widths: tuple[int, ...] = (16, 32)
    pair: tuple[int, str] = (1, "a")
    layers: list[int] = field(default_factory=lambda: [1, 2])


@dataclass
class RunToy:
    name: str
    search: SearchToy = field(default_factory=SearchToy)
    weights: dict[str, float] = field(default_factory=dict)
    root: Path | None = None
    seed: int | None = None
    anything: Any = None


@dataclass
class Checked:
    lr: float = 0.1

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError("lr must be positive")


def config_error(cls: type, data: Any, *, where: str = "") -> str:
    with pytest.raises(ConfigError) as info:
        from_dict(cls, data, where=where)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------- from_dict


def test_defaults_and_nested_build() -> None:
    cfg = from_dict(RunToy, {"name": "r", "search": {"darts": {"unrolled": True}}})
    assert cfg == RunToy(name="r", search=SearchToy(darts=DartsToy(unrolled=True)))


def test_coercions() -> None:
    cfg = from_dict(
        RunToy,
        {
            "name": "r",
            "search": {"darts": {"arch_lr": "3e-4"}, "widths": [8, 16, 32], "pair": [2, "b"], "epochs": 2.0},
            "weights": {"kl": 1, "ce": "1e-2"},
            "root": "data/x",
            "seed": 7,
        },
    )
    assert cfg.search.darts.arch_lr == pytest.approx(3e-4) and isinstance(cfg.search.darts.arch_lr, float)
    assert cfg.search.widths == (8, 16, 32) and cfg.search.pair == (2, "b")
    assert cfg.search.epochs == 2 and isinstance(cfg.search.epochs, int)
    assert cfg.weights == {"kl": 1.0, "ce": pytest.approx(0.01)}
    assert cfg.root == Path("data/x")


def test_optional_nested_and_any() -> None:
    cfg = from_dict(RunToy, {"name": "r", "search": {"extra": {"arch_lr": 1}}, "anything": [1, {"a": 2}]})
    assert cfg.search.extra == DartsToy(arch_lr=1.0)
    assert cfg.anything == [1, {"a": 2}]
    assert from_dict(RunToy, {"name": "r", "search": {"extra": None}, "seed": None}).seed is None


def test_where_prefixes_paths() -> None:
    assert config_error(DartsToy, {"arch_lr": "x"}, where="search.darts").startswith("search.darts.arch_lr:")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"name": "r", "search": {"darts": {"arch_lr": "abc"}}},
            "search.darts.arch_lr: expected a float, got 'abc'",
        ),
        ({"name": "r", "search": {"dartz": {}}}, "unknown key 'search.dartz' (did you mean 'darts'?)"),
        (
            {"name": "r", "zzz": 1},
            "unknown key 'zzz'; valid keys: name, search, weights, root, seed, anything",
        ),
        (
            {"name": "r", "search": {"darts": {"unrolled": 1}}},
            "search.darts.unrolled: expected a bool (true or false), got 1",
        ),
        (
            {"name": "r", "search": {"darts": {"unrolled": "yes"}}},
            "search.darts.unrolled: expected a bool (true or false), got 'yes'",
        ),
        ({"name": "r", "search": {"epochs": True}}, "search.epochs: expected an int, got True"),
        ({"name": "r", "search": {"epochs": 2.5}}, "search.epochs: expected an int, got 2.5"),
        ({"name": 3}, "name: expected a string, got 3"),
        (
            {"name": "r", "search": {"darts": {"hessian": "ggm"}}},
            "search.darts.hessian: expected one of 'ggn', 'exact_hvp', got 'ggm' (did you mean 'ggn'?)",
        ),
        ({"name": "r", "search": {"widths": [8, "a"]}}, "search.widths[1]: expected an int, got 'a'"),
        ({"name": "r", "search": {"widths": 8}}, "search.widths: expected a list, got 8"),
        ({"name": "r", "search": {"pair": [1]}}, "search.pair: expected a list of 2 items, got [1]"),
        ({"name": "r", "search": {"layers": [1, None]}}, "search.layers[1]: expected an int, got None"),
        ({"name": "r", "weights": {"kl": "high"}}, "weights.kl: expected a float, got 'high'"),
        ({"name": "r", "weights": [1]}, "weights: expected a mapping, got [1]"),
        ({"name": "r", "seed": "7"}, "seed: expected an int or null, got '7'"),
        (
            {"name": "r", "search": {"extra": 3}},
            "search.extra: expected a mapping of DartsToy fields or null, got 3",
        ),
        (
            {"name": "r", "search": {"extra": {"arch_lr": []}}},
            "search.extra.arch_lr: expected a float, got []",
        ),
        ({"name": "r", "search": 5}, "search: expected a mapping of SearchToy fields, got 5"),
        ({}, "missing required key 'name'"),
    ],
)
def test_errors_are_one_line_and_name_the_path(data: dict[str, Any], expected: str) -> None:
    assert config_error(RunToy, data) == expected


def test_top_level_not_a_mapping() -> None:
    assert config_error(RunToy, [1, 2]) == "config: expected a mapping of RunToy fields, got [1, 2]"


def test_long_values_are_shortened() -> None:
    message = config_error(RunToy, {"name": "r", "seed": "y" * 500})
    assert len(message) < 160 and message.endswith("...")


def test_post_init_value_error_becomes_config_error() -> None:
    assert config_error(Checked, {"lr": -1}, where="optim") == "optim: lr must be positive"


def test_from_dict_rejects_non_dataclass() -> None:
    with pytest.raises(TypeError):
        from_dict(dict, {})


# ---------------------------------------------------------------------------------------- round trip


def test_to_dict_and_yaml_round_trip(tmp_path: Path) -> None:
    cfg = RunToy(name="r", root=Path("a/b"), weights={"kl": 0.5}, search=SearchToy(extra=DartsToy()))
    plain = to_dict(cfg)
    assert plain["search"]["widths"] == [16, 32] and plain["root"] == "a/b"
    path = tmp_path / "config.resolved.yaml"
    dump_yaml(cfg, path)
    assert from_dict(RunToy, load_yaml(path)) == cfg
    assert list(load_yaml(path)) == ["name", "search", "weights", "root", "seed", "anything"]


def test_to_dict_rejects_non_config() -> None:
    with pytest.raises(TypeError):
        to_dict(3)
    with pytest.raises(TypeError):
        to_dict({"a": object()})


# ---------------------------------------------------------------------------------------- YAML files


def yaml_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_load_yaml_reads_exponent_floats(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nbig: 3E5\nname: '1e3'\nn: 12\nflag: true\n")
    assert load_yaml(path) == {"lr": 1e-3, "big": 3e5, "name": "1e3", "n": 12, "flag": True}


def test_load_yaml_empty_file_is_empty_dict(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_yaml(path) == {}


def test_load_yaml_missing_file(tmp_path: Path) -> None:
    assert "not found" in yaml_error(tmp_path / "nope.yaml")


def test_load_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    message = yaml_error(path)
    assert "invalid YAML" in message and f"{path}:" in message
    line = int(message.split(f"{path}:")[1].split(":")[0])
    assert line in (2, 3, 4)


def test_load_yaml_duplicate_key(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("search:\n  epochs: 1\n  epochs: 2\n")
    assert yaml_error(path) == f"{path}:3:3: invalid YAML: duplicate key 'epochs'"


def test_load_yaml_top_level_must_be_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    assert "top level must be a mapping" in yaml_error(path)


# ---------------------------------------------------------------------------------------- overrides


def test_apply_overrides_parses_values_and_creates_mappings() -> None:
    data = {"search": {"epochs": 3}}
    out = apply_overrides(
        data,
        [
            "search.epochs=5",
            "search.darts.arch_lr=1e-3",
            "search.widths=[8,16]",
            "x.flag=true",
            "name='1e3'",
            "seed=",
            "search.darts.hessian=exact_hvp",
            "note=a=b",
        ],
    )
    assert out == {
        "search": {"epochs": 5, "darts": {"arch_lr": 1e-3, "hessian": "exact_hvp"}, "widths": [8, 16]},
        "x": {"flag": True},
        "name": "1e3",
        "seed": None,
        "note": "a=b",
    }
    assert data == {"search": {"epochs": 3}}  # the input is not modified


def test_override_replaces_null_section() -> None:
    assert apply_overrides({"extra": None}, ["extra.arch_lr=0.1"]) == {"extra": {"arch_lr": 0.1}}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("search.epochs", "malformed override 'search.epochs': expected key=value"),
        ("=3", "malformed override '=3'"),
        ("a..b=1", "malformed override 'a..b=1'"),
        ("search.epochs.x=1", "override 'search.epochs.x=1': 'search.epochs' is 3, not a mapping"),
        ("a=[1,", "override 'a=[1,': cannot parse the value"),
    ],
)
def test_malformed_overrides(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({"search": {"epochs": 3}}, [override])
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_load_config_file_plus_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: r\nsearch:\n  epochs: 3\n  darts:\n    arch_lr: 6e-4\n")
    cfg = load_config(RunToy, path, ["search.darts.unrolled=true", "search.widths=[4]"])
    assert cfg.search.epochs == 3 and cfg.search.darts == DartsToy(arch_lr=6e-4, unrolled=True)
    assert cfg.search.widths == (4,)


def test_load_config_without_file_and_bad_override_key() -> None:
    assert load_config(RunToy, None, ["name=x"]).name == "x"
    with pytest.raises(ConfigError, match=r"unknown key 'search.dartz' \(did you mean 'darts'\?\)"):
        load_config(RunToy, None, ["name=x", "search.dartz.arch_lr=1"])
    with pytest.raises(ConfigError, match="search.darts.arch_lr: expected a float, got 'abc'"):
        load_config(RunToy, None, ["name=x", "search.darts.arch_lr=abc"])
