"""The shipped YAML presets load with the strict loader, and `--config NAME` finds them."""

from __future__ import annotations

import dataclasses

import pytest

from binas.config.io import from_dict, load_yaml
from binas.config.preset_files import copy_preset, get_preset, list_presets, resolve_config_path
from binas.config.schema import RunConfig
from binas.errors import ConfigError
from binas.strategies import STRATEGIES, resolve_method_options

EXPECTED = {
    "darts_cifar10_search",
    "pcdarts_cifar10_search",
    "dcpnas_cifar10_search",
    "cpnas_cifar10_search",
    "ddpnas_cifar10_search",
    "dcpnas_l_imagenet_train",
    "digits_default",
}


def test_every_expected_preset_is_shipped_with_a_description():
    presets = {p.name: p for p in list_presets()}
    assert EXPECTED <= set(presets)
    assert all(p.description for p in presets.values())


#: Presets of other commands' configs (`binas reid`: `ReidConfig`; `binas detect`: `DetectConfig`), loaded
#: strictly by their own tests.
OTHER_SCHEMAS = ("_reid", "_detect")


@pytest.mark.parametrize(
    "preset", [p for p in list_presets() if not p.name.endswith(OTHER_SCHEMAS)], ids=lambda p: p.name
)
def test_preset_loads_strictly_and_its_options_validate(preset):
    cfg = from_dict(RunConfig, load_yaml(preset.path))
    resolved = resolve_method_options(cfg)  # an unregistered method, a bad option or an unused key fails here
    options = resolved.search.options
    assert isinstance(options, STRATEGIES.get(cfg.search.method).Config)
    assert set(cfg.search.options) <= {f.name for f in dataclasses.fields(options)}
    assert resolve_method_options(resolved) is resolved  # typed once: a second call is a no-op


def test_digits_default_is_the_schema_default_spelled_out():
    cfg = from_dict(RunConfig, load_yaml(get_preset("digits_default").path))
    default = RunConfig()
    assert (cfg.data, cfg.space, cfg.train) == (default.data, default.space, default.train)


def test_resolve_config_path_prefers_files_then_presets(tmp_path, monkeypatch):
    own = tmp_path / "mine.yaml"
    own.write_text("seed: 3\n")
    assert resolve_config_path(own) == own
    assert resolve_config_path("darts_cifar10_search") == get_preset("darts_cifar10_search").path
    assert resolve_config_path("darts_cifar10_search.yaml").name == "darts_cifar10_search.yaml"
    with pytest.raises(ConfigError, match="config file not found"):
        resolve_config_path(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="did you mean 'darts_cifar10_search'"):
        resolve_config_path("darts_cifar10_serch")
    with pytest.raises(ConfigError, match="is a directory"):
        resolve_config_path(tmp_path)


def test_copy_preset_never_overwrites_without_force(tmp_path):
    target = copy_preset("digits_default", tmp_path)
    assert target == tmp_path / "digits_default.yaml"
    assert target.read_text() == get_preset("digits_default").text()
    with pytest.raises(ConfigError, match="already exists"):
        copy_preset("digits_default", target)
    target.write_text("edited")
    copy_preset("digits_default", target, force=True)
    assert target.read_text() == get_preset("digits_default").text()
    with pytest.raises(ConfigError, match="does not exist"):
        copy_preset("digits_default", tmp_path / "no" / "such.yaml")
