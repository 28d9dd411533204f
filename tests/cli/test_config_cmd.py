"""`binas config ls|show|cp`, and config errors (missing file, bad YAML, unknown key, wrong type) as one line."""

from __future__ import annotations

import pytest

from binas.cli.main import EXIT_USAGE, main
from binas.config.preset_files import get_preset


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ls_lists_every_preset_with_its_description(capsys):
    code, out, _ = run_cli(capsys, "config", "ls")
    assert code == 0
    assert "dcpnas_l_imagenet_train" in out and "digits_default" in out
    assert get_preset("darts_cifar10_search").description in out


def test_show_prints_the_preset_text(capsys):
    code, out, _ = run_cli(capsys, "config", "show", "pcdarts_cifar10_search")
    assert code == 0 and out == get_preset("pcdarts_cifar10_search").text()


def test_cp_copies_and_refuses_to_overwrite(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "config", "cp", "digits_default", str(tmp_path))
    assert code == 0 and (tmp_path / "digits_default.yaml").exists() and "copied" in out
    code, _, err = run_cli(capsys, "config", "cp", "digits_default", str(tmp_path))
    assert code == EXIT_USAGE and "already exists" in err and err.count("\n") == 1
    code, _, _ = run_cli(capsys, "config", "cp", "digits_default", str(tmp_path), "--force")
    assert code == 0


def test_show_unknown_preset_is_one_line(capsys):
    code, _, err = run_cli(capsys, "config", "show", "dcpnas_cifar_search")
    assert code == EXIT_USAGE and "no preset named" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("search:\n  epochs: [1\n", "invalid YAML"),
        ("search:\n  epoch: 3\n", "unknown key 'search.epoch' (did you mean 'epochs'?)"),
        ("search:\n  epochs: many\n", "search.epochs: expected an int"),
        ("data:\n  name: digits\ndata:\n  name: cifar10\n", "duplicate key"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    code, _, err = run_cli(capsys, "run", "--config", str(path), "--out", str(tmp_path / "run"))
    assert code == EXIT_USAGE and message in err and err.count("\n") == 1


def test_missing_config_file_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", "--config", str(tmp_path / "nope.yaml"))
    assert code == EXIT_USAGE and "config file not found" in err and err.count("\n") == 1
