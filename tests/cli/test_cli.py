"""The `binas` command line: subcommands, config overrides, and one-line errors with exit status 2."""

from __future__ import annotations

import json

import pytest

from binas.cli.main import EXIT_USAGE, main
from binas.genotype import Genotype
from tests.cli.flags import TINY


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_darts_writes_genotype_and_metrics(tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        "search",
        "--method",
        "darts",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "--device",
        "cpu",
        "--quiet",
        *TINY,
    )
    assert code == 0
    assert Genotype.load(tmp_path / "genotype.json")
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1
    assert str(tmp_path) in out


def test_search_resume_continues_the_run(tmp_path, capsys):
    run_cli(capsys, "search", "--method", "random", "--epochs", "2", "--out", str(tmp_path), "--quiet", *TINY)
    code, out, _ = run_cli(capsys, "search", "--resume", str(tmp_path), "--quiet")
    assert code == 0 and "epochs      2" in out


def test_profile_json_has_the_documented_keys(capsys):
    code, out, _ = run_cli(capsys, "profile", "darts-v2", "--dataset", "cifar10", "--real", "--json")
    assert code == 0
    data = json.loads(out)
    assert {"params", "flops", "bops", "ops", "memory_mbit"} <= set(data)
    assert data["params"] == 3349342 and data["bops"] == 0


def test_profile_binary_table(capsys):
    code, out, _ = run_cli(capsys, "profile", "darts-v2", "--policy", "strict", "--channels", "8", "--layers", "3")
    assert code == 0 and "BOPs" in out and "Mbit" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "--method", "nosuch"], "unknown search method 'nosuch'"),
        (["search", "--dataset", "cifar10", "--data-dir", "/nonexistent/cifar"], "/nonexistent/cifar"),
        (["search", "--set", "search.epochs=abc"], "search.epochs"),
        (["search", "--set", "search.nosuchkey=1"], "unknown key"),
        (["search", "--set", "novalue"], "novalue"),
        (["search", "--set", "search.options.nosuch=1"], "search.options"),
        (["search", "--resume", "/nonexistent/run"], "/nonexistent/run"),
        (["profile", "no-such-genotype"], "no-such-genotype"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code, _, err = run_cli(capsys, *argv, *(["--out", str(tmp_path / "o")] if argv[0] == "search" else []))
    assert code == EXIT_USAGE
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_bad_yaml_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: [unclosed\n")
    code, _, err = run_cli(capsys, "search", "--config", str(bad), "--out", str(tmp_path / "o"))
    assert code == EXIT_USAGE and "bad.yaml" in err and len(err.strip().splitlines()) == 1


def test_malformed_genotype_file(tmp_path, capsys):
    bad = tmp_path / "g.json"
    bad.write_text('{"normal": [["sep_conv_3x3", 7]]}')
    code, _, err = run_cli(capsys, "profile", str(bad))
    assert code == EXIT_USAGE and len(err.strip().splitlines()) == 1


def test_version_and_help_start_without_torch():
    import subprocess
    import sys

    code = "import sys; from binas.cli.main import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_profile_quantizer_choices_are_the_registry():
    from binas.cli.main import build_parser
    from binas.quant.quantizers import WEIGHT_QUANTIZERS

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    action = next(a for a in sub.choices["profile"]._actions if a.dest == "weight_quantizer")
    assert sorted(action.choices) == sorted(WEIGHT_QUANTIZERS.names())
