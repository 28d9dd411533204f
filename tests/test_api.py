"""The library entry points a notebook uses, as the README's "From Python" section shows them."""

from __future__ import annotations

import subprocess
import sys

import torch

import binas
from binas.genotype import Genotype

#: The README's sequence at test size: digits at 8x8, 64 images, C=4, 3 cells, one epoch each.
TINY = [
    "search.method=darts",
    "search.epochs=1",
    "device=cpu",
    "num_threads=1",
    "data.image_size=8",
    "data.max_train_samples=64",
    "space.channels=4",
    "space.layers=3",
    "search.batch_size=32",
    "train.epochs=1",
    "train.two_step=false",
    "train.net.channels=4",
    "train.net.layers=3",
    "train.batch_size=32",
    "train.optim.warmup_epochs=0",
]


def test_search_train_profile_from_python(tmp_path):
    cfg = binas.load_config("digits_quick", TINY)
    assert isinstance(cfg, binas.RunConfig) and cfg.search.method == "darts"
    found = binas.search(cfg, tmp_path / "search", progress=False)
    assert isinstance(found.genotype, Genotype) and found.epochs == 1
    trained = binas.train(cfg, found.genotype, tmp_path / "train", progress=False)
    assert isinstance(trained.model, torch.nn.Module) and not trained.model.training
    reloaded, spec, _ = binas.load_model(tmp_path / "train")
    profile = binas.profile(trained.model, spec.input_size)
    assert profile.params == trained.profile["params"] > 0
    x = torch.randn(2, *spec.input_size[1:])
    assert torch.equal(reloaded(x), trained.model(x))  # the result's model is the saved network
    features = binas.backbone(found.genotype, channels=4, layers=3, stem="cifar")(torch.randn(1, 3, 16, 16))
    assert len(features) == 3


def test_run_from_python_writes_one_run_directory(tmp_path):
    result = binas.run(binas.load_config(None, TINY), tmp_path / "run", plots=False, progress=False)
    assert result.summary["method"] == "darts" and (tmp_path / "run" / "summary.json").is_file()
    assert binas.compare_runs([tmp_path / "run"]).count("\n") >= 2


def test_the_default_method_is_the_same_everywhere():
    assert binas.RunConfig().search.method == binas.load_config().search.method == "dcp-nas"


def test_import_binas_does_not_load_torch():
    code = "import sys, binas; print('torch' in sys.modules, binas.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False" and out[1] == binas.__version__
