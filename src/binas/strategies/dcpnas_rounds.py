"""The two rounds of a DCP-NAS epoch (Algorithm 10 lines 2-6 and 8-12) and the Parent's tangent direction.

Each function takes the `DCPNAS` strategy (its supernets, α, optimizers and decoupled state) and the
engine's `EpochLoop`, and returns the round's metrics.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from binas.engine.loop import EpochLoop, Meter, accuracy
from binas.objectives.distill import soft_cross_entropy
from binas.objectives.reconstruction import model_reconstruction_loss, reconstruction_gradient
from binas.objectives.tangent import child_forward_context, flatten, tangent_arch_gradient
from binas.space.arch_params import CELL_KINDS

if TYPE_CHECKING:
    from binas.strategies.dcpnas import DCPNAS


def _weights(effectives: Sequence[Tensor]) -> dict[str, Tensor]:
    """Supernet forward kwargs: softmax over the ops of each edge (Eq. 4.28)."""
    return {kind: torch.softmax(a, dim=-1) for kind, a in zip(CELL_KINDS, effectives)}


def _weight_step(strategy: DCPNAS, net: torch.nn.Module, opt: torch.optim.Optimizer, loss: Tensor,
                 loop: EpochLoop, recon_weight: float = 0.0) -> dict[str, float]:
    """One weight step; with `recon_weight` (μ) > 0 also the norms of μ∇L_R and of the rest of the gradient
    (the KD part) over the Child's binary convs, before clipping (L_R's gradient is closed-form)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    loop.sync_grads(net.parameters())
    balance: dict[str, float] = {}
    if recon_weight > 0:
        convs = strategy.child_convs
        with torch.no_grad():
            reduction = strategy.options.reconstruction_reduction
            recon = [recon_weight * g for g in reconstruction_gradient(convs, reduction)]
            kd = [c.weight.grad - r if c.weight.grad is not None else -r for c, r in zip(convs, recon)]
            balance = {"child_recon_grad_norm": float(torch.cat([r.reshape(-1) for r in recon]).norm()),
                       "child_kd_grad_norm": float(torch.cat([k.reshape(-1) for k in kd]).norm())}
    torch.nn.utils.clip_grad_norm_(net.parameters(), strategy.ctx.search.grad_clip)
    opt.step()
    return balance


def _arch_step(strategy: DCPNAS, which: str, effectives: Sequence[Tensor], grads: Sequence[Tensor],
               loop: EpochLoop, eta: float) -> None:
    """Set ∂L/∂α_eff as α's gradient, average it over ranks, and take the decoupled step (Eqs. 4.50-4.52)."""
    arch, opt, dec, table = (
        (strategy.parent_arch, strategy.parent_a_opt, strategy.parent_do, strategy.parent_norms) if which == "parent"
        else (strategy.child_arch, strategy.child_a_opt, strategy.child_do, strategy.child_norms)
    )
    alphas = strategy.alphas(arch)
    for a, g in zip(alphas, grads):
        a.grad = g.detach().clone()
    loop.sync_grads(alphas)
    by_kind = table() if dec.enabled else {}
    norms = [by_kind[k] for k in CELL_KINDS] if dec.enabled else []
    dec.step(alphas, effectives, opt, norms, eta)


def parent_round(strategy: DCPNAS, epoch: int, loop: EpochLoop, eta: float) -> dict[str, float]:
    """Real-valued NAS (Alg. 10 lines 2-6): α on val by L_NAS (Eq. 4.21) with decoupled optimization,
    then w on train by cross-entropy (DARTS first-order order)."""
    t0 = time.perf_counter()
    net, dec = strategy.parent, strategy.parent_do
    alphas = strategy.alphas(strategy.parent_arch)
    dec.begin_round(alphas)
    net.train()
    meter = Meter()
    for (x, y), (xv, yv) in loop.paired(strategy.ctx.train_data, strategy.ctx.val_data, desc=f"epoch {epoch} parent"):
        effectives = [dec.effective(i, a) for i, a in enumerate(alphas)]
        logits_v = net(xv, **_weights(effectives))
        loss_v = loop.check(F.cross_entropy(logits_v, yv), "parent validation loss")
        grads = torch.autograd.grad(loss_v, effectives)
        _arch_step(strategy, "parent", effectives, grads, loop, eta)
        with torch.no_grad():
            weights = _weights([dec.effective(i, a) for i, a in enumerate(alphas)])
        logits = net(x, **weights)
        loss = loop.check(F.cross_entropy(logits, y), "parent training loss")
        _weight_step(strategy, net, strategy.parent_w_opt, loss, loop)
        meter.update(len(yv), parent_val_loss=loss_v.item(), parent_val_acc=accuracy(logits_v, yv)[0])
        meter.update(len(y), parent_train_loss=loss.item(), parent_train_acc=accuracy(logits, y)[0])
    dec.fold(alphas)  # the backtracked α̃ is the α the Child inherits (spec A6)
    return meter.means() | {"parent_seconds": time.perf_counter() - t0}


def _parent_forward(strategy: DCPNAS, x: Tensor, weights: dict[str, Tensor], y: Tensor | None,
                    ) -> tuple[Tensor, tuple[Tensor, ...] | None]:
    """Parent logits at its (frozen) α; with labels, also g_P = ∇_α L_NAS on this batch (Eq. 4.29, A2)."""
    if y is None:
        with torch.no_grad():
            return strategy.parent(x, **weights), None
    alphas = [a.detach().requires_grad_(True) for a in strategy.alphas(strategy.parent_arch)]
    logits = strategy.parent(x, **_weights(alphas))
    grads = torch.autograd.grad(F.cross_entropy(logits, y), alphas)
    return logits.detach(), grads


def parent_tangent(strategy: DCPNAS, loop: EpochLoop) -> tuple[Tensor, ...]:
    """g_P averaged over the whole val split at the end of the Parent round (spec A3 option (a))."""
    strategy.parent.train()
    totals = [torch.zeros_like(a) for a in strategy.alphas(strategy.parent_arch)]
    count = 0
    for xv, yv in loop.batches(strategy.ctx.val_data, stream="parent-tangent", shuffle=False, desc="tangent"):
        _, grads = _parent_forward(strategy, xv, {}, yv)
        assert grads is not None
        for t, g in zip(totals, grads):
            t.add_(g, alpha=len(yv))
        count += len(yv)
    holders = [torch.zeros_like(t, requires_grad=True) for t in totals]
    for h, t in zip(holders, totals):
        h.grad = t / max(count, 1)
    loop.sync_grads(holders)
    return tuple(h.grad for h in holders)


def child_round(strategy: DCPNAS, epoch: int, loop: EpochLoop, eta: float,
                round_tangent: tuple[Tensor, ...] | None) -> dict[str, float]:
    """1-bit NAS (Alg. 10 lines 8-12): α̂ by tangent propagation (Eq. 4.33) with decoupled optimization,
    then ŵ by −G + μ L_R (Eqs. 4.32, 4.34-4.35), the Parent fixed as the teacher."""
    t0 = time.perf_counter()
    opts, net, dec = strategy.options, strategy.child, strategy.child_do
    alphas = strategy.alphas(strategy.child_arch)
    dec.begin_round(alphas)
    net.train()
    strategy.parent.train()
    with torch.no_grad():
        parent_weights = _weights(strategy.alphas(strategy.parent_arch))
    meter = Meter()
    arch_seconds = 0.0
    lam = opts.lam_on_batch_means(strategy.ctx.search.batch_size)
    signs = [c.weight.detach() >= 0 for c in strategy.child_convs]
    for (x, y), (xv, yv) in loop.paired(strategy.ctx.train_data, strategy.ctx.val_data, desc=f"epoch {epoch} child"):
        t_arch = time.perf_counter()
        teacher_v, g_parent = _parent_forward(strategy, xv, parent_weights, yv if round_tangent is None else None)
        g_parent = round_tangent if g_parent is None else g_parent
        effectives = [dec.effective(i, a) for i, a in enumerate(alphas)]
        with child_forward_context(net, lam=lam, hessian=opts.hessian):
            logits_v = net(xv, **_weights(effectives))
        step = tangent_arch_gradient(logits_v, teacher_v, effectives, g_parent, lam=lam,
                                     hessian=opts.hessian, distance=opts.distance)
        loop.check(step.loss, "child validation loss")
        _arch_step(strategy, "child", effectives, step.gradient, loop, eta)
        arch_seconds += time.perf_counter() - t_arch
        teacher, _ = _parent_forward(strategy, x, parent_weights, None)
        with torch.no_grad():
            weights = _weights([dec.effective(i, a) for i, a in enumerate(alphas)])
        logits = net(x, **weights)
        kd = soft_cross_entropy(logits, teacher)
        recon = (model_reconstruction_loss(strategy.child_convs, opts.reconstruction_reduction)
                 if opts.mu > 0 and strategy.child_convs else None)
        loss = loop.check(kd if recon is None else kd + opts.mu * recon, "child training loss")
        balance = _weight_step(strategy, net, strategy.child_w_opt, loss, loop, opts.mu if recon is not None else 0.0)
        child_grad_norm = float(flatten(step.child_gradient).norm())
        meter.update(len(yv), child_val_loss=step.loss.item(), child_val_acc=accuracy(logits_v, yv)[0],
                     tangent_distance=step.distance, grad_gap_norm=step.gap_norm,
                     tangent_correction_norm=step.correction_norm, child_grad_norm=child_grad_norm,
                     tangent_ratio=step.correction_norm / max(child_grad_norm, 1e-30),
                     parent_grad_norm=float(flatten(g_parent).norm()))
        if balance:
            ratio = balance["child_recon_grad_norm"] / max(balance["child_kd_grad_norm"], 1e-30)
            meter.update(len(y), **balance, child_recon_kd_ratio=ratio)
        meter.update(len(y), child_train_loss=kd.item(), child_train_acc=accuracy(logits, y)[0],
                     child_agreement=accuracy(logits, teacher.argmax(1))[0])
        if recon is not None:
            meter.update(len(y), child_recon_loss=recon.item())
    dec.fold(alphas)
    flips = sum(int((c.weight.detach() >= 0).ne(s).sum()) for c, s in zip(strategy.child_convs, signs))
    total = sum(s.numel() for s in signs)
    return meter.means() | {"child_seconds": time.perf_counter() - t0, "child_arch_seconds": arch_seconds,
                            "tangent_lambda": lam, "child_sign_flip_fraction": flips / max(total, 1)}
