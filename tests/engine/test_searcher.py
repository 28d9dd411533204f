"""The search loop: NaN guard keeps the last good checkpoint; a finished run is never lost."""

from __future__ import annotations

import pytest
import torch

from binas.engine.loop import EpochLoop, accuracy
from binas.engine.metrics_log import read_metrics
from binas.errors import CheckpointError, NonFiniteLossError
from binas.storage.checkpoint import load_checkpoint
from binas.strategies.darts import Darts
from binas.workflows import search as api
from tests.conftest import tiny_run_config


def test_nan_loss_stops_with_one_line_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    original = Darts.run_epoch

    def run_epoch(self, epoch, loop):
        if epoch == 1:
            loop.check(torch.tensor(float("nan")), "training loss")
        return original(self, epoch, loop)

    monkeypatch.setattr(Darts, "run_epoch", run_epoch)
    with pytest.raises(NonFiniteLossError, match="training loss became nan at epoch 1"):
        api.search(tiny_run_config("darts", epochs=3), tmp_path, progress=False)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 0
    assert [r["epoch"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [0]


def test_resume_of_another_method_is_refused(tmp_path):
    api.search(tiny_run_config("random", epochs=1), tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="'random' search, not 'darts'"):
        api.search(tiny_run_config("darts", epochs=2), tmp_path, resume=True, progress=False)


def test_resume_of_a_finished_run_keeps_its_results(tmp_path):
    first = api.search(tiny_run_config("darts", epochs=2), tmp_path, progress=False)
    again = api.search(tiny_run_config("darts", epochs=2), tmp_path, resume=True, progress=False)
    assert again.genotype == first.genotype
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == 2


def test_accuracy_topk():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    target = torch.tensor([1, 2, 1])
    top1, top2 = accuracy(logits, target, (1, 2))
    assert top1 == pytest.approx(100 / 3) and top2 == pytest.approx(200 / 3)


def test_paired_batches_cover_the_first_split_and_cycle_the_second(tmp_path):
    from binas.data import make_synthetic
    from binas.engine.runtime import setup_runtime

    runtime = setup_runtime("cpu", 0, num_threads=1)
    big, small = make_synthetic(40, image_size=4), make_synthetic(8, image_size=4, seed=1)
    loop = EpochLoop(runtime, 0, batch_size=8, progress=False)
    pairs = list(loop.paired(big, small))
    assert len(pairs) == 5 and all(b2[0].shape[0] == 8 for _, b2 in pairs)
    again = list(EpochLoop(runtime, 0, batch_size=8, progress=False).paired(big, small))
    assert all(torch.equal(a[0][0], b[0][0]) for a, b in zip(pairs, again))
