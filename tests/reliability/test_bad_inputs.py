"""A corpus of bad inputs across the subcommands: each ends with exit status 2 and one line naming the
problem, never a traceback, and leaves every file that was already on disk as it was.

Each case builds its input under `tmp_path/in` (and `tmp_path/out` is the only place a command may
write); the test snapshots every file before the command and compares after.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from binas.cli.main import EXIT_USAGE, main
from tests.cli.flags import TINY

Case = Callable[[Path], list[str]]


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _yaml(root: Path, text: str) -> str:
    return str(_write(root / "c.yaml", text))


def _search(*extra: str) -> Case:
    return lambda root: ["search", "--method", "darts", "--epochs", "1", "--quiet", *TINY, *extra]


def _search_with_config(text: str) -> Case:
    return lambda root: ["search", "--config", _yaml(root, text), "--quiet", *TINY]


def _run_dir(root: Path, *, config: str | None = "seed: 0\n", checkpoint: bytes | None = None) -> str:
    run = root / "run"
    run.mkdir(parents=True, exist_ok=True)
    if config is not None:
        _write(run / "config.yaml", config)
    if checkpoint is not None:
        _write(run / "checkpoint.pt", checkpoint)
    return str(run)


class _Boom:
    """Pickled, its loading would run code: `weights_only` loading must refuse it."""

    def __reduce__(self):
        return (Path.touch, (Path("/tmp/binas-pwned-by-a-checkpoint"),))


def _hostile_pickle() -> bytes:
    return pickle.dumps({"format": "binas-checkpoint", "payload": _Boom()})


def _model_file(root: Path, edit: Callable[[dict], dict] | None = None, raw: bytes | None = None) -> str:
    path = root / "model.pt"
    if raw is not None:
        return str(_write(path, raw))
    record = {
        "format": "binas-checkpoint",
        "version": 1,
        "kind": "model",
        "binas_version": "0.1.0",
        "payload": {"spec": {"genotype": {}}, "state_dict": {}, "metrics": {}},
    }
    torch.save(edit(record) if edit else record, path)
    return str(path)


def _genotype_file(root: Path, text: str) -> str:
    return str(_write(root / "g.json", text))


def _truncated_cifar(root: Path) -> str:
    folder = root / "cifar-10-batches-py"
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        _write(folder / name, b"\x80\x04\x95truncated")
    return str(root)


def _imagenet_with_a_text_file(root: Path) -> str:
    for split in ("train", "val"):
        for cls in ("n01", "n02"):
            for i in range(4):
                _write(root / "imagenet" / split / cls / f"{cls}_{i}.JPEG", "this is not an image")
    return str(root / "imagenet")


CASES: dict[str, tuple[Case, str]] = {
    # config files and overrides
    "config-missing": (lambda r: ["search", "--config", str(r / "nope.yaml")], "not found"),
    "config-is-a-directory": (lambda r: ["search", "--config", str(r)], "directory"),
    "config-binary": (lambda r: ["search", "--config", str(_write(r / "b.yaml", bytes(range(256))))], "c"),
    "config-malformed-yaml": (_search_with_config("search: [1, 2\n"), "invalid YAML"),
    "config-python-tag": (_search_with_config("seed: !!python/object/apply:os.system ['true']\n"), "invalid YAML"),
    "config-top-level-list": (_search_with_config("- 1\n- 2\n"), "mapping"),
    "config-unknown-key": (_search_with_config("serch: {}\n"), "serch"),
    "config-wrong-type": (_search_with_config("seed: abc\n"), "seed"),
    "set-unknown-key": (_search("--set", "search.nosuch=1"), "nosuch"),
    "set-malformed": (_search("--set", "search.epochs"), "key=value"),
    "set-wrong-type": (_search("--set", "search.batch_size=abc"), "batch_size"),
    "batch-size-zero": (_search("--set", "search.batch_size=0"), "batch_size"),
    "batch-size-negative": (_search("--set", "search.batch_size=-4"), "batch_size"),
    "channels-zero": (_search("--set", "space.channels=0"), "channels"),
    "layers-negative": (_search("--set", "space.layers=-1"), "layers"),
    "image-size-zero": (_search("--set", "data.image_size=0"), "image_size"),
    "train-portion-above-one": (_search("--set", "data.train_portion=1.5"), "train_portion"),
    "epochs-negative": (lambda r: ["search", "--method", "darts", "--epochs", "-1", *TINY], "epochs"),
    "learning-rate-nan": (_search("--set", "search.w_lr=.nan"), "w_lr"),
    "learning-rate-huge": (
        lambda r: ["search", "--method", "darts", "--epochs", "3", *TINY, "--set", "search.w_lr=1e30"],
        "nan",
    ),
    "threads-zero": (_search("--set", "num_threads=0"), "num_threads"),
    "seed-negative": (_search("--seed", "-1"), "seed"),
    "ste-clip-zero": (_search("--set", "space.ste_clip=0"), "ste_clip"),
    "unknown-method": (lambda r: ["search", "--method", "nosuch", *TINY], "nosuch"),
    "unknown-option": (_search("--set", "search.options.nosuch=1"), "nosuch"),
    "option-out-of-range": (
        lambda r: ["search", "--method", "ddpnas", *TINY, "--set", "search.options.gamma=2"],
        "gamma",
    ),
    "unused-key-for-method": (lambda r: ["search", "--method", "cp-nas", "--epochs", "3", *TINY], "search.epochs"),
    # data
    "cifar-dir-missing": (_search("--dataset", "cifar10", "--data-dir", "/nonexistent/cifar"), "/nonexistent/cifar"),
    "cifar-dir-empty": (lambda r: _search("--dataset", "cifar10", "--data-dir", str(r))(r), "cifar"),
    "cifar-truncated": (lambda r: _search("--dataset", "cifar10", "--data-dir", _truncated_cifar(r))(r), "cifar"),
    "imagenet-non-image": (
        lambda r: _search("--dataset", "imagenet", "--data-dir", _imagenet_with_a_text_file(r))(r),
        ".JPEG",
    ),
    # resume
    "resume-missing-dir": (lambda r: ["search", "--resume", str(r / "nope")], "not found"),
    "resume-no-config": (lambda r: ["search", "--resume", _run_dir(r, config=None)], "config"),
    "resume-truncated-checkpoint": (
        lambda r: ["search", "--resume", _run_dir(r, config="search: {method: darts}\n", checkpoint=b"PK\x03\x04")],
        "checkpoint",
    ),
    "resume-hostile-checkpoint": (
        lambda r: ["search", "--resume", _run_dir(r, config="search: {method: darts}\n", checkpoint=_hostile_pickle())],
        "checkpoint",
    ),
    # genotypes
    "train-unknown-genotype": (lambda r: ["train", "nosuch-net"], "nosuch-net"),
    "train-malformed-genotype-json": (lambda r: ["train", _genotype_file(r, '{"normal": [')], "g.json"),
    "train-invalid-cell": (
        lambda r: [
            "train",
            _genotype_file(
                r,
                json.dumps(
                    {
                        "normal": [["conv_9x9", 0]] * 8,
                        "normal_concat": [2, 3, 4, 5],
                        "reduce": [["max_pool_3x3", 0]] * 8,
                        "reduce_concat": [2, 3, 4, 5],
                    }
                ),
            ),
        ],
        "conv_9x9",
    ),
    "train-teacher-missing": (lambda r: ["train", "darts-v2", "--loss", "kd", "--teacher", str(r / "t.pt")], "t.pt"),
    "train-resume-missing": (lambda r: ["train", "--resume", str(r / "nope")], "not found"),
    "profile-unknown-genotype": (lambda r: ["profile", "nosuch-net"], "nosuch-net"),
    "profile-genotype-is-a-list": (lambda r: ["profile", _genotype_file(r, "[1, 2, 3]")], "g.json"),
    # model files
    "eval-missing-model": (lambda r: ["eval", str(r / "model.pt")], "model.pt"),
    "eval-truncated-model": (lambda r: ["eval", _model_file(r, raw=b"PK\x03\x04 not a zip")], "model.pt"),
    "eval-hand-edited-spec": (lambda r: ["eval", _model_file(r)], "spec"),
    "eval-hostile-pickle": (lambda r: ["eval", _model_file(r, raw=_hostile_pickle())], "model.pt"),
    "export-missing-model": (lambda r: ["export", str(r / "model.pt"), "--out", str(r.parent / "out" / "m")], "model"),
    # run directories
    "compare-missing": (lambda r: ["compare", str(r / "nope")], "not found"),
    "compare-corrupt-summary": (
        lambda r: ["compare", str(_write(r / "run" / "summary.json", "{oops").parent)],
        "cannot read",
    ),
    "plot-missing": (lambda r: ["plot", str(r / "nope")], "not found"),
    "plot-empty": (lambda r: ["plot", str(r)], "nothing to plot"),
    "generate-missing": (lambda r: ["generate", str(r / "nope"), "--flops", "1e6"], "not found"),
    # presets
    "config-show-unknown": (lambda r: ["config", "show", "nosuch_preset"], "nosuch_preset"),
    "config-cp-existing": (
        lambda r: ["config", "cp", "digits_quick", str(_write(r / "mine.yaml", "seed: 1\n"))],
        "exists",
    ),
}


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_loses_nothing(name, tmp_path, capsys):
    build, message = CASES[name]
    inputs = tmp_path / "in"
    inputs.mkdir()
    argv = build(inputs)
    if argv[0] in ("search", "train") and "--out" not in argv and "--resume" not in argv:
        argv += ["--out", str(tmp_path / "out" / "run")]
    if argv[0] in ("search", "train") and "--quiet" not in argv:
        argv.append("--quiet")  # progress and INFO lines off: stderr holds the error alone
    before = _snapshot(inputs)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE, f"{name}: exit {code}\n{err}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"binas {argv[0]}: error: "), f"{name}: {err!r}"
    assert message.lower() in lines[0].lower(), f"{name}: {lines[0]!r} does not name {message!r}"
    assert "Traceback" not in err + out
    after = _snapshot(inputs)
    assert all(after.get(f) == digest for f, digest in before.items()), f"{name}: a file that was on disk changed"
    assert not Path("/tmp/binas-pwned-by-a-checkpoint").exists()


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40
