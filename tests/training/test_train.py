"""`binas.workflows.train.train`: two-step / one-step / real runs, losses and teachers, files, exact resume."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from binas.engine.metrics_log import read_metrics
from binas.errors import ConfigError
from binas.nets.model_file import load_model
from binas.storage.checkpoint import load_checkpoint
from binas.workflows import train as training
from binas.workflows.train import train
from tests.training.conftest import tiny_train_config

SUMMARY_KEYS = {"top1", "top5", "params", "ops", "memory_mbit", "flops", "bops", "loss", "seconds", "phases"}


def test_two_step_run_writes_its_directory(tmp_path):
    result = train(tiny_train_config(), "darts-v2", tmp_path, progress=False)
    for name in (
        "config.yaml",
        "genotype.json",
        "metrics.jsonl",
        "checkpoint.pt",
        "step1.pt",
        "model.pt",
        "summary.json",
    ):
        assert (tmp_path / name).is_file(), name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary) and set(summary["phases"]) == {"step1", "step2"}
    assert summary["top1"] == result.top1 and 0.0 <= result.top1 <= 100.0 and result.top5 >= result.top1
    assert summary["bops"] > 0 and summary["policy"] == "released"
    assert [r["phase"] for r in read_metrics(tmp_path / "metrics.jsonl")] == ["step1", "step2"]
    _, step1, _ = load_model(tmp_path / "step1.pt")
    assert step1.policy["weights"] == [] and step1.policy["activations"] == ["pointwise"]  # spec §3.2 step 1
    _, final, _ = load_model(tmp_path)
    assert set(final.policy["weights"]) == {"preprocess", "reduce", "depthwise", "pointwise"}


def test_step2_starts_from_step1_weights(tmp_path, monkeypatch):
    seen = {}
    real = training.init_from_previous

    def spy(net, state):
        seen.update(state)
        return real(net, state)

    monkeypatch.setattr(training, "init_from_previous", spy)
    train(tiny_train_config(), "darts-v2", tmp_path, progress=False)
    step1 = load_checkpoint(tmp_path / "step1.pt", kind="model")["state_dict"]
    assert seen and all(torch.equal(seen[k], v) for k, v in step1.items())


@pytest.mark.parametrize(
    "overrides, phases, policy",
    [
        (("train.two_step=false",), ["train"], "released"),
        (("train.binary=false", "train.net.drop_path_prob=0.2"), ["train"], "real"),
        (("space.policy=strict", "space.weight_quantizer=learned_scale"), ["step1", "step2"], "strict"),
    ],
)
def test_one_step_real_and_strict(tmp_path, overrides, phases, policy):
    result = train(tiny_train_config(*overrides), "darts-v1", tmp_path, progress=False)
    assert list(result.phases) == phases and result.summary["policy"] == policy
    assert (result.summary["bops"] == 0) == (policy == "real")


def test_kd_with_a_self_real_teacher_trains_the_teacher_first(tmp_path):
    result = train(tiny_train_config("train.loss.kind=kd"), "darts-v2", tmp_path, progress=False)
    assert list(result.phases) == ["teacher", "step1", "step2"]
    assert (tmp_path / "teacher.pt").is_file()
    _, spec, _ = load_model(tmp_path / "teacher.pt")
    assert spec.policy["name"] == "real"
    lines = read_metrics(tmp_path / "metrics.jsonl")
    assert "train_kd" not in lines[0] and "train_kd" in lines[1] and "train_kd" in lines[2]
    assert [r["global_epoch"] for r in lines] == [0, 1, 2]


def test_checkpoint_teacher_and_ce_kd(tmp_path):
    train(tiny_train_config("train.binary=false"), "darts-v2", tmp_path / "teacher", progress=False)
    cfg = tiny_train_config(
        "train.loss.kind=ce+kd", "train.loss.kd_weight=0.3", f"train.teacher.source={tmp_path / 'teacher'}"
    )
    result = train(cfg, "darts-v2", tmp_path / "student", progress=False)
    assert list(result.phases) == ["step1", "step2"] and "train_kd" in result.phases["step1"]
    wrong = tiny_train_config(
        "train.loss.kind=kd", f"train.teacher.source={tmp_path / 'teacher'}", "data.image_size=16"
    )
    with pytest.raises(ConfigError, match="image size"):
        train(wrong, "darts-v2", tmp_path / "wrong", progress=False)


def test_cp_kernel_loss(tmp_path):
    result = train(
        tiny_train_config("train.loss.kind=cp", "train.two_step=false"), "darts-v2", tmp_path, progress=False
    )
    assert result.phases["train"]["train_cp"] > 0


def test_loss_mixtures_are_what_they_say():
    from binas.config.train import LossConfig
    from binas.objectives.distill import soft_cross_entropy

    torch.manual_seed(0)
    logits, teacher_logits, y = torch.randn(6, 10), torch.randn(6, 10), torch.randint(0, 10, (6,))
    teacher = torch.nn.Identity()
    out = (logits, None, torch.zeros(6, 4))
    ce = torch.nn.functional.cross_entropy(logits, y)
    kd = soft_cross_entropy(logits, teacher_logits)
    kd_loss, parts = training.make_loss("kd", LossConfig(), net=teacher, teacher=teacher)(out, teacher_logits, y)
    assert torch.allclose(kd_loss, kd) and parts["train_kd"] == pytest.approx(kd.item())
    mix, _ = training.make_loss("ce+kd", LossConfig(kd_weight=0.25), net=teacher, teacher=teacher)(
        out, teacher_logits, y
    )
    assert torch.allclose(mix, 0.75 * ce + 0.25 * kd)
    with pytest.raises(ConfigError, match="needs a teacher"):
        training.make_loss("kd", LossConfig(), net=teacher, teacher=None)


def test_teacher_errors(tmp_path):
    with pytest.raises(ConfigError, match="self-real"):
        train(tiny_train_config("train.loss.kind=kd", "train.binary=false"), "darts-v2", tmp_path, progress=False)
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="needs torchvision"):
            train(
                tiny_train_config("train.loss.kind=kd", "train.teacher.source=torchvision:resnet34"),
                "darts-v2",
                tmp_path / "tv",
                progress=False,
            )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    cfg = tiny_train_config("train.epochs=2", "data.max_train_samples=128", "space.weight_quantizer=learned_scale")
    out = tmp_path_factory.mktemp("full")
    train(cfg, "darts-v2", out, progress=False)
    return cfg, out


# 4 batches per epoch, 2 epochs per step: call 6 is in step 1 (step 2's network, with its randomly initialised
# learned scales, is built after the resume), call 14 in step 2's second epoch.
@pytest.mark.parametrize("kill_at, saved_at", [(6, ("step1", 0)), (14, ("step2", 0))])
def test_killed_mid_epoch_and_resumed_ends_like_an_uninterrupted_run(
    tmp_path, monkeypatch, uninterrupted, kill_at, saved_at
):
    cfg, full_dir = uninterrupted

    real_make_loss, calls = training.make_loss, {"n": 0}

    def dying_make_loss(*args, **kwargs):
        loss_fn = real_make_loss(*args, **kwargs)

        def wrapped(out, x, y):
            calls["n"] += 1
            if calls["n"] == kill_at:
                raise KeyboardInterrupt
            return loss_fn(out, x, y)

        return wrapped

    monkeypatch.setattr(training, "make_loss", dying_make_loss)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, "darts-v2", tmp_path / "cut", progress=False)
    monkeypatch.setattr(training, "make_loss", real_make_loss)
    assert not (tmp_path / "cut" / "model.pt").exists()
    saved = load_checkpoint(tmp_path / "cut" / "checkpoint.pt", kind="train")
    assert (saved["phase"], saved["epoch"]) == saved_at
    train(cfg, "darts-v2", tmp_path / "cut", resume=True, progress=False)
    full = load_checkpoint(full_dir / "model.pt", kind="model")["state_dict"]
    resumed = load_checkpoint(tmp_path / "cut" / "model.pt", kind="model")["state_dict"]
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    lines = read_metrics(tmp_path / "cut" / "metrics.jsonl")
    assert [r["global_epoch"] for r in lines] == [0, 1, 2, 3]
    timers = ("seconds", "cpu_seconds")
    untimed = [{k: v for k, v in r.items() if k not in timers} for r in lines]
    full_lines = read_metrics(full_dir / "metrics.jsonl")
    assert untimed == [{k: v for k, v in r.items() if k not in timers} for r in full_lines]


def test_a_torchvision_built_for_another_torch_is_a_one_line_error(tmp_path, monkeypatch):
    from binas.errors import ConfigError
    from binas.workflows.train import _torchvision_teacher

    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    with pytest.raises(ConfigError, match="does not load beside torch") as err:
        _torchvision_teacher("resnet18", pretrained=False)
    assert "\n" not in str(err.value) and "torchvision::nms" in str(err.value)
