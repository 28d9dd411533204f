"""DCP-NAS strategy: options are validated, every ablation switch changes the α trajectory, metrics are reported.

Runs use a micro search (digits 8x8, 64 samples, C=4, 3 cells of 2 nodes, batch 16: two steps per round).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from binas import api
from binas.config.schema import DataConfig, RunConfig, SearchConfig, SpaceConfig
from binas.engine.loop import EpochLoop
from binas.engine.runtime import derive_seed, seed_everything, setup_runtime
from binas.errors import ConfigError
from binas.strategies.base import SearchStrategy
from binas.strategies.dcpnas import DCPNAS, DCPNASOptions

ABLATIONS = {
    "tangent-off": {"use_tangent": False},
    "reconstruction-off": {"use_reconstruction": False},
    "exact-hessian": {"hessian": "exact"},
    "rank1-hessian": {"hessian": "ggn-rank1"},
    "empirical-fisher": {"hessian": "empirical-fisher"},
    "decoupled-off": {"use_decoupled": False},
    "l1-distance": {"distance": "l1"},
    "cosine-distance": {"distance": "cosine"},
    "per-round-tangent": {"parent_gradient": "per-round"},
}
# At the spec's eta = eta_1 * eta_2 (Eq. 4.50) the backtrack term is ~1e-8 of alpha, below float32 resolution,
# so decoupled optimization on and off give identical alphas; these runs use eta = 1 (psi is then the per-step
# backtrack coefficient) so that the D.O. switch is exercised. Everything else is the spec default.
MICRO_OPTIONS = {"backtrack_eta": 1.0}


def micro_config(**options) -> RunConfig:
    return RunConfig(
        seed=0, device="cpu", num_threads=1,
        data=DataConfig(name="digits", image_size=8, max_train_samples=64),
        space=SpaceConfig(channels=4, layers=3, steps=2, multiplier=2),
        search=SearchConfig(method="dcp-nas", epochs=1, batch_size=16, options={**MICRO_OPTIONS, **options}),
    )


def run_epochs(cfg: RunConfig, epochs: int = 1) -> tuple[DCPNAS, dict[str, float]]:
    """Build the strategy and run `epochs` epochs, seeded as the engine seeds them."""
    runtime = setup_runtime("cpu", cfg.seed, num_threads=1)
    strategy = api.build_strategy(cfg, runtime)
    metrics: dict[str, float] = {}
    for epoch in range(epochs):
        seed_everything(derive_seed(cfg.seed, "search-epoch", epoch))
        metrics = strategy.run_epoch(epoch, EpochLoop(runtime, epoch, cfg.search.batch_size, progress=False))
    assert isinstance(strategy, DCPNAS)
    return strategy, metrics


def alpha(strategy: DCPNAS) -> torch.Tensor:
    return torch.cat([a.detach().reshape(-1) for a in strategy.alphas(strategy.child_arch)])


@pytest.fixture(scope="module")
def runs():
    """One-epoch micro runs by name, computed once per module (`default` plus the `ABLATIONS`)."""
    cache: dict[str, tuple[DCPNAS, dict[str, float]]] = {}

    def get(name: str) -> tuple[DCPNAS, dict[str, float]]:
        if name not in cache:
            cache[name] = run_epochs(micro_config(**ABLATIONS.get(name, {})))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def default_run(runs) -> tuple[DCPNAS, dict[str, float]]:
    return runs("default")


def test_defaults_follow_the_spec() -> None:
    o = DCPNASOptions()
    assert (o.tangent_weight, o.reconstruction_weight) == (5e-3, 0.2)  # spec §5.7
    assert (o.hessian, o.distance, o.parent_gradient) == ("ggn", "frobenius", "per-batch")
    assert (o.rank_order, o.rank_scope, o.psi_shape, o.psi_init) == ("largest-first", "edge", "edge", 1e-3)
    assert dataclasses.replace(o, use_tangent=False).lam == 0.0
    assert dataclasses.replace(o, use_reconstruction=False).mu == 0.0


@pytest.mark.parametrize("options, match", [
    ({"tangent_weight": -1.0}, "tangent_weight"),
    ({"hessian": "full"}, "hessian"),
    ({"distance": "kl"}, "distance"),
    ({"tau": -1}, "tau"),
    ({"tau": 9}, "tau"),
])
def test_bad_options_are_config_errors(options, match) -> None:
    with pytest.raises(ConfigError, match=match):
        api.resolve_search_options(micro_config(**options))


def test_epoch_reports_both_supernets_and_the_tangent(default_run) -> None:
    strategy, metrics = default_run
    for key in ("parent_train_loss", "parent_val_acc", "child_train_loss", "child_val_acc", "child_recon_loss",
                "tangent_distance", "grad_gap_norm", "tangent_correction_norm", "child_seconds"):
        assert key in metrics and metrics[key] == metrics[key], key
    assert metrics["tangent_correction_norm"] > 0
    record = strategy.epoch_record()
    assert {"alpha_entropy_normal", "alpha_entropy_reduce", "child_psi_mean", "parent_gated_fraction"} <= set(record)
    # alpha is inherited back: after the epoch the Parent's alpha is the Child's (Algorithm 10 line 13).
    for a, a_hat in zip(strategy.alphas(strategy.parent_arch), strategy.alphas(strategy.child_arch)):
        assert torch.equal(a, a_hat)
    assert strategy.genotype().normal


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_ablation_switch_changes_the_alpha_trajectory(runs, default_run, name: str) -> None:
    strategy, _ = runs(name)
    assert not torch.allclose(alpha(strategy), alpha(default_run[0]), rtol=0, atol=1e-7), name


def test_tangent_off_equals_lambda_zero_and_reports_no_correction(runs) -> None:
    off, metrics = runs("tangent-off")
    zero, _ = run_epochs(micro_config(tangent_weight=0.0))
    assert torch.equal(alpha(off), alpha(zero))
    assert metrics["tangent_correction_norm"] == 0.0


def test_tau_equal_to_the_op_count_equals_decoupled_off(runs) -> None:
    gated_off, _ = run_epochs(micro_config(tau=8))
    assert torch.equal(alpha(gated_off), alpha(runs("decoupled-off")[0]))


@pytest.mark.parametrize("epochs, expected", [(None, DCPNAS.default_epochs), (2, 2)])
def test_search_epochs_default_to_the_methods_own(epochs, expected) -> None:
    cfg = micro_config()
    cfg = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, epochs=epochs))
    strategy = api.build_strategy(cfg, setup_runtime("cpu", 0, num_threads=1))
    assert strategy.num_epochs() == expected
    assert DCPNAS.default_epochs != SearchStrategy.default_epochs  # an epoch is a Parent and a Child round
