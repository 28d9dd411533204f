"""DCP-NAS strategy: options are validated, every mechanism acts at the default options (and the property
tests fail when it is switched off or its sign flipped), every ablation switch changes the α trajectory.

Runs use a micro search (digits 8x8, 64 samples, C=4, 3 cells of 2 nodes, batch 16: two steps per round).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from binas.config.schema import DataConfig, RunConfig, SearchConfig, SpaceConfig
from binas.engine.loop import EpochLoop
from binas.engine.runtime import seed_everything, setup_runtime
from binas.engine.strategy import SearchStrategy
from binas.errors import ConfigError
from binas.objectives.distill import soft_cross_entropy
from binas.objectives.reconstruction import model_reconstruction_loss
from binas.objectives.tangent import child_forward_context, flatten, tangent_arch_gradient
from binas.quant.layers import quant_convs
from binas.seeds import derive_seed
from binas.strategies import resolve_method_options
from binas.strategies.dcpnas import DCPNAS
from binas.strategies.dcpnas_options import DCPNASOptions
from binas.workflows import search as api

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
    "tangent-on-batch-means": {"tangent_reduction": "mean"},
    "reconstruction-summed": {"reconstruction_reduction": "sum"},
    "eta-product": {"eta_schedule": "product"},
}


def micro_config(**options) -> RunConfig:
    return RunConfig(
        seed=0,
        device="cpu",
        num_threads=1,
        data=DataConfig(name="digits", image_size=8, max_train_samples=64),
        space=SpaceConfig(channels=4, layers=3, steps=2, multiplier=2),
        search=SearchConfig(method="dcp-nas", epochs=1, batch_size=16, options=options),
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
    return torch.cat([a.detach().reshape(-1) for a in strategy.child.alphas()])


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


def test_options_in_effect() -> None:
    o = DCPNASOptions()
    assert dataclasses.replace(o, use_tangent=False).lam == 0.0
    assert dataclasses.replace(o, use_reconstruction=False).mu == 0.0
    # D on sum-reduced losses (the default) is lambda * B on batch means; `mean` keeps lambda.
    assert o.lam_on_batch_means(64) == pytest.approx(64 * o.lam)
    assert dataclasses.replace(o, tangent_reduction="mean").lam_on_batch_means(64) == o.lam


def test_decoupled_coefficient_is_sized_against_the_round() -> None:
    strategy = api.build_strategy(micro_config(), setup_runtime("cpu", 0, num_threads=1))
    assert isinstance(strategy, DCPNAS)
    steps, o = strategy.steps_per_round(), strategy.options
    # eta is 1 at the start (normalized schedule), so psi_0 is kappa_0 = backtrack_per_round / steps.
    assert strategy.backtrack_eta(strategy.ctx.search.w_lr) == pytest.approx(1.0)
    assert strategy.initial_psi() == pytest.approx(o.backtrack_per_round / steps)
    assert strategy.psi_lr() == pytest.approx(400.0 / steps) and strategy.child.decoupled.psi_lr == strategy.psi_lr()
    w_min = strategy.ctx.search.w_lr_min
    assert strategy.backtrack_eta(w_min) == pytest.approx(w_min / strategy.ctx.search.w_lr)
    # The literal eta_1 eta_2 reading starts psi at kappa_0 / (eta_1 eta_2), so kappa_0 is the same.
    product = api.build_strategy(micro_config(eta_schedule="product"), setup_runtime("cpu", 0, num_threads=1))
    assert isinstance(product, DCPNAS)
    eta0 = product.backtrack_eta(product.ctx.search.w_lr)
    assert eta0 == pytest.approx(product.ctx.search.arch_lr * product.ctx.search.w_lr)
    assert eta0 * product.initial_psi() == pytest.approx(strategy.initial_psi())


@pytest.mark.parametrize(
    "options, match",
    [
        ({"tangent_weight": -1.0}, "tangent_weight"),
        ({"hessian": "full"}, "hessian"),
        ({"distance": "kl"}, "distance"),
        ({"tau": -1}, "tau"),
        ({"tau": 9}, "tau"),
    ],
)
def test_bad_options_are_config_errors(options, match) -> None:
    with pytest.raises(ConfigError, match=match):
        resolve_method_options(micro_config(**options))


def test_epoch_reports_both_supernets_and_the_tangent(default_run) -> None:
    strategy, metrics = default_run
    for key in (
        "parent_train_loss",
        "parent_val_acc",
        "child_train_loss",
        "child_val_acc",
        "child_recon_loss",
        "tangent_distance",
        "grad_gap_norm",
        "tangent_correction_norm",
        "child_seconds",
    ):
        assert key in metrics and metrics[key] == metrics[key], key
    assert metrics["tangent_correction_norm"] > 0
    record = strategy.epoch_record()
    assert {
        "alpha_entropy_normal",
        "alpha_entropy_reduce",
        "child_psi_mean",
        "parent_gated_fraction",
        "child_kappa_mean",
        "child_backtrack_per_round",
        "child_psi_change",
    } <= set(record)
    # alpha is inherited back: after the epoch the Parent's alpha is the Child's (Algorithm 10 line 13).
    for a, a_hat in zip(strategy.parent.alphas(), strategy.child.alphas()):
        assert torch.equal(a, a_hat)
    assert strategy.genotype().normal


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_ablation_switch_changes_the_alpha_trajectory(runs, default_run, name: str) -> None:
    """Wiring: every switch reaches the search. What each mechanism does is in the property tests below."""
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


# --- Each mechanism acts at the default options -------------------------------------------------------------


def test_default_run_shows_every_mechanism_acting(runs, default_run) -> None:
    """The logged magnitudes of a default run: the tangent correction is a material part of the α̂-gradient,
    the backtrack moves α by percent per round and ψ̃ learns, L_R pulls without freezing the weight signs."""
    strategy, metrics = default_run
    record = strategy.epoch_record()
    # lambda * B: the ratio grows with the batch (3.4 % at the digits search's B = 64, 0.4 % at this B = 16).
    assert 3e-3 < metrics["tangent_ratio"] < 0.3
    assert runs("tangent-on-batch-means")[1]["tangent_ratio"] < 1e-3
    assert metrics["tangent_lambda"] == pytest.approx(strategy.options.lam * 16)
    for who in ("parent", "child"):
        assert record[f"{who}_backtrack_per_round"] > 1e-2
        assert record[f"{who}_psi_change"] > 1e-2
    assert 0 < metrics["child_recon_kd_ratio"] < 1.0
    assert 0 <= metrics["child_sign_flip_fraction"] < 1  # 2 steps here; flips: the L_R test below


def _corrections_against_the_exact_slope(**options) -> list[tuple[float, float]]:
    """Per val batch of the micro search, at the default options (micro supernet, initial α̂, weights and Parent):
    (⟨λ H ∂D/∂g_C, ∇_α̂ D⟩ / (‖λ H ∂D/∂g_C‖ ‖∇_α̂ D‖), ‖λ H ∂D/∂g_C‖ / ‖g_C‖), with H the default curvature
    (the GGN) in the correction and ∇_α̂ D = 2 H (g_C − g_P) from the exact Hessian-vector product: how well
    the correction the α̂ step adds points down the true slope of D(g_C, g_P), and how big it is.

    Why not D after n α̂ steps: the 1-bit Child's g_C is not smooth in α̂ (binarized activations flip) and
    Adam's steps of ~3e-4 move D by ~0.04 % over six steps, so D after a few steps moves either way at any λ
    up to 10x the default (measured; docs/architecture.md).
    """
    torch.manual_seed(0)
    cfg = micro_config(**options)
    strategy = api.build_strategy(cfg, setup_runtime("cpu", 0, num_threads=1))
    assert isinstance(strategy, DCPNAS)
    o = strategy.options
    loop = EpochLoop(strategy.ctx.runtime, 0, cfg.search.batch_size, progress=False)
    parent_alphas = [a.detach().requires_grad_(True) for a in strategy.parent.alphas()]
    alphas = strategy.child.alphas()
    out = []
    for xv, yv in loop.batches(strategy.ctx.val_data, stream="val"):
        teacher = strategy.parent.net(
            xv, normal=torch.softmax(parent_alphas[0], -1), reduce=torch.softmax(parent_alphas[1], -1)
        )
        g_parent = torch.autograd.grad(F.cross_entropy(teacher, yv), parent_alphas)
        steps = {}
        for hessian, lam in (("exact", 1.0), (o.hessian, o.lam_on_batch_means(len(yv)))):
            with child_forward_context(strategy.child.net, lam=lam, hessian=hessian):
                logits = strategy.child.net(
                    xv, normal=torch.softmax(alphas[0], -1), reduce=torch.softmax(alphas[1], -1)
                )
            steps[hessian] = tangent_arch_gradient(
                logits, teacher.detach(), alphas, g_parent, lam=lam, hessian=hessian, distance=o.distance
            )
        slope = flatten(steps["exact"].gradient) - flatten(steps["exact"].child_gradient)
        correction = flatten(steps[o.hessian].gradient) - flatten(steps[o.hessian].child_gradient)
        g_c = flatten(steps[o.hessian].child_gradient)
        out.append((float(F.cosine_similarity(correction, slope, dim=0)), float(correction.norm() / g_c.norm())))
    return out


def test_tangent_correction_points_down_the_exact_slope_of_d() -> None:
    """Eq. 4.32's defining property at the default options, to first order: the correction the α̂-gradient
    gets (GGN curvature) descends D(g_C, g_P) as the exact Hessian sees it, on average over the batches, and
    is material. Switched off (or inert, as λ on batch means was) the ratio fails; with the correction's sign
    flipped (in `tangent_arch_gradient` or the options) the cosine does."""
    measured = _corrections_against_the_exact_slope()
    cosines = [cos for cos, _ in measured]
    assert len(measured) == 2 and sum(cosines) / len(cosines) > 0.02  # ~0.1: the GGN is a coarse model in α̂
    assert all(ratio > 2e-3 for _, ratio in measured)  # λB = 0.08 at this batch of 16 (0.32 at B = 64)


def _child_weight_steps(mu_sign: float, steps: int = 8) -> tuple[float, float]:
    """(fraction of binary weights whose sign changed, final L_R) after `steps` Child weight steps on KD + μ L_R
    with the default options' μ times `mu_sign` (search optimizer, clip 5; the Parent is the fixed teacher)."""
    torch.manual_seed(0)
    strategy = api.build_strategy(micro_config(), setup_runtime("cpu", 0, num_threads=1))
    assert isinstance(strategy, DCPNAS)
    o, search = strategy.options, strategy.ctx.search
    child, convs = strategy.child.net, quant_convs(strategy.child.net)
    opt = torch.optim.SGD(
        child.parameters(), lr=search.w_lr, momentum=search.w_momentum, weight_decay=search.w_weight_decay
    )
    alphas = strategy.child.alphas()
    weights = {k: torch.softmax(a.detach(), -1) for k, a in zip(("normal", "reduce"), alphas)}
    signs = [c.weight.detach() >= 0 for c in convs]
    loop = EpochLoop(strategy.ctx.runtime, 0, 16, progress=False)
    batches = list(loop.batches(strategy.ctx.train_data, stream="train"))
    for i in range(steps):
        x, _ = batches[i % len(batches)]
        with torch.no_grad():
            teacher = strategy.parent.net(x, **weights)
        loss = soft_cross_entropy(child(x, **weights), teacher)
        loss = loss + mu_sign * o.mu * model_reconstruction_loss(convs, o.reconstruction_reduction)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(child.parameters(), search.grad_clip)
        opt.step()
    flips = sum(int((c.weight.detach() >= 0).ne(s).sum()) for c, s in zip(convs, signs))
    with torch.no_grad():
        recon = float(model_reconstruction_loss(convs, o.reconstruction_reduction))
    return flips / sum(s.numel() for s in signs), recon


@pytest.mark.slow
def test_reconstruction_loss_pulls_weights_to_their_binary_values_without_freezing_them() -> None:
    """With L_R at the defaults the reconstruction error ends below the L_R-off run (above it with the sign
    flipped), and Child weights still change sign (the summed L_R at μ = 0.2 froze every one)."""
    (flips_on, recon_on), (_, recon_off), (_, recon_flipped) = (_child_weight_steps(s) for s in (1.0, 0.0, -1.0))
    assert recon_on < recon_off < recon_flipped
    assert flips_on > 0


def test_decoupled_optimization_moves_alpha_and_learns_its_coefficient(runs, default_run) -> None:
    """Over one epoch at the defaults, D.O. moves α well beyond float resolution and ψ̃ changes."""
    strategy, _ = default_run
    off, _ = runs("decoupled-off")
    a_on, a_off = alpha(strategy), alpha(off)
    assert (a_on - a_off).norm() > 1e-2 * a_off.norm()
    psi0 = strategy.initial_psi()
    for dec in (strategy.parent.decoupled, strategy.child.decoupled):
        psi = torch.cat([p.detach().reshape(-1) for p in dec.psi])
        assert (psi - psi0).abs().max() > 1e-4 * psi0
