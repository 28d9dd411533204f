"""`binas profile --weight-quantizer`: the binarizer is selectable, and zoo genotypes default to theirs."""

from __future__ import annotations

import json

import pytest

from binas.cli.main import EXIT_USAGE, main
from binas.metrics import profile_genotype
from binas.quant.policy import BinarizationPolicy

SMALL = ["--dataset", "imagenet", "--channels", "8", "--layers", "3", "--json"]


def profile(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, float]:
    code = main(["profile", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def expected(genotype: str, family: str, weight_quantizer: str) -> dict[str, int | float | str]:
    policy = BinarizationPolicy.released(weight_quantizer=weight_quantizer)
    return profile_genotype(genotype, dataset="imagenet", family=family, policy=policy, channels=8, layers=3).to_dict()


def test_dcp_nas_l_profiles_as_released_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    default = profile(capsys, "dcp-nas-l", *SMALL)
    assert default == expected("dcp-nas-l", "dcp", "learned_scale")
    mean_abs = profile(capsys, "dcp-nas-l", *SMALL, "--weight-quantizer", "mean_abs")
    assert mean_abs == expected("dcp-nas-l", "dcp", "mean_abs")
    # the learned scale M (one real value per output channel of each binary conv) is the only difference
    assert default["params"] > mean_abs["params"] and default["bops"] == mean_abs["bops"]


def test_other_genotypes_default_to_mean_abs(capsys: pytest.CaptureFixture[str]) -> None:
    assert profile(capsys, "darts-v2", *SMALL) == expected("darts-v2", "darts", "mean_abs")
    chosen = profile(capsys, "darts-v2", *SMALL, "--weight-quantizer", "learned_scale")
    assert chosen == expected("darts-v2", "darts", "learned_scale")


def test_table_names_the_binarizer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "dcp-nas-l", "--channels", "8", "--layers", "3"]) == 0
    assert "weights learned_scale" in capsys.readouterr().out


def test_real_with_a_quantizer_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["profile", "dcp-nas-l", "--real", "--weight-quantizer", "mean_abs"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_USAGE and len(err) == 1 and "--real" in err[0]


def test_unknown_quantizer_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["profile", "dcp-nas-l", "--weight-quantizer", "xnor"])
    assert exc.value.code == EXIT_USAGE and "learned_scale" in capsys.readouterr().err
