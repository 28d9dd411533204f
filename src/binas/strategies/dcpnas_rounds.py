"""The two rounds of a DCP-NAS epoch (Algorithm 10 lines 2-6 and 8-12) and the Parent's tangent direction.

Each round runs on a `Side` (the Parent's or the Child's supernet, α, optimizers and decoupled state)
with the engine's `EpochLoop` and returns the round's metrics.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor

from binas.engine.loop import EpochLoop, Meter, accuracy
from binas.engine.strategy import SearchContext
from binas.objectives.distill import soft_cross_entropy
from binas.objectives.reconstruction import (
    ReconstructionReduction,
    model_reconstruction_loss,
    reconstruction_gradient,
)
from binas.objectives.tangent import child_forward_context, flatten, tangent_arch_gradient
from binas.quant.layers import QuantConv2d, quant_convs
from binas.strategies.dcpnas_options import DCPNASOptions
from binas.strategies.dcpnas_side import Side, mixing_weights


def _reconstruction_balance(
    convs: list[QuantConv2d], mu: float, reduction: ReconstructionReduction
) -> dict[str, float]:
    """Norms of μ∇L_R and of the rest of the gradient (the KD part) over the Child's binary convs, read
    from the synced gradients before clipping (L_R's gradient is closed-form)."""
    with torch.no_grad():
        recon = [mu * g for g in reconstruction_gradient(convs, reduction)]
        kd = [c.weight.grad - r if c.weight.grad is not None else -r for c, r in zip(convs, recon)]
        return {
            "child_recon_grad_norm": float(torch.cat([r.reshape(-1) for r in recon]).norm()),
            "child_kd_grad_norm": float(torch.cat([k.reshape(-1) for k in kd]).norm()),
        }


def parent_round(parent: Side, ctx: SearchContext, epoch: int, loop: EpochLoop, eta: float) -> dict[str, float]:
    """Real-valued NAS (Alg. 10 lines 2-6): α on val by L_NAS (Eq. 4.21) with decoupled optimization,
    then w on train by cross-entropy (DARTS first-order order)."""
    t0 = time.perf_counter()
    net, alphas = parent.net, parent.alphas()
    params = list(net.parameters())
    parent.decoupled.begin_round(alphas)
    net.train()
    meter = Meter()
    for (x, y), (xv, yv) in loop.paired(ctx.train_data, ctx.val_data, desc=f"epoch {epoch} parent"):
        effectives = parent.effectives()
        logits_v = net(xv, **mixing_weights(effectives))
        loss_v = loop.check(F.cross_entropy(logits_v, yv), "parent validation loss")
        grads = torch.autograd.grad(loss_v, effectives)
        parent.arch_step(effectives, grads, loop, eta)
        with torch.no_grad():
            weights = mixing_weights(parent.effectives())
        logits = net(x, **weights)
        loss = loop.check(F.cross_entropy(logits, y), "parent training loss")
        loop.weight_step(loss, parent.w_opt, params, ctx.search.grad_clip)
        meter.update(len(yv), parent_val_loss=loss_v.item(), parent_val_acc=accuracy(logits_v, yv)[0])
        meter.update(len(y), parent_train_loss=loss.item(), parent_train_acc=accuracy(logits, y)[0])
    parent.decoupled.fold(alphas)  # the backtracked α̃ is the α the Child inherits (spec A6)
    return meter.means() | {"parent_seconds": time.perf_counter() - t0}


def _parent_forward(
    parent: Side,
    x: Tensor,
    weights: dict[str, Tensor],
    y: Tensor | None,
) -> tuple[Tensor, tuple[Tensor, ...] | None]:
    """Parent logits at its (frozen) α; with labels, also g_P = ∇_α L_NAS on this batch (Eq. 4.29, A2)."""
    if y is None:
        with torch.no_grad():
            return parent.net(x, **weights), None
    alphas = [a.detach().requires_grad_(True) for a in parent.alphas()]
    logits = parent.net(x, **mixing_weights(alphas))
    grads = torch.autograd.grad(F.cross_entropy(logits, y), alphas)
    return logits.detach(), grads


def parent_tangent(parent: Side, ctx: SearchContext, loop: EpochLoop) -> tuple[Tensor, ...]:
    """g_P averaged over the whole val split at the end of the Parent round (spec A3 option (a))."""
    parent.net.train()
    totals = [torch.zeros_like(a) for a in parent.alphas()]
    count = 0
    for xv, yv in loop.batches(ctx.val_data, stream="parent-tangent", shuffle=False, desc="tangent"):
        _, grads = _parent_forward(parent, xv, {}, yv)
        assert grads is not None
        for t, g in zip(totals, grads):
            t.add_(g, alpha=len(yv))
        count += len(yv)
    means = [t / max(count, 1) for t in totals]
    holders = [torch.zeros_like(t, requires_grad=True) for t in totals]
    for h, m in zip(holders, means):
        h.grad = m
    loop.sync_grads(holders)  # averages each holder's .grad, i.e. each of `means`, in place
    return tuple(means)


def child_round(
    child: Side,
    parent: Side,
    ctx: SearchContext,
    opts: DCPNASOptions,
    epoch: int,
    loop: EpochLoop,
    eta: float,
    round_tangent: tuple[Tensor, ...] | None,
) -> dict[str, float]:
    """1-bit NAS (Alg. 10 lines 8-12): α̂ by tangent propagation (Eq. 4.33) with decoupled optimization,
    then ŵ by −G + μ L_R (Eqs. 4.32, 4.34-4.35), the Parent fixed as the teacher."""
    t0 = time.perf_counter()
    net, alphas = child.net, child.alphas()
    params = list(net.parameters())
    convs = quant_convs(net)
    child.decoupled.begin_round(alphas)
    net.train()
    parent.net.train()
    with torch.no_grad():
        parent_weights = mixing_weights(parent.alphas())
    meter = Meter()
    arch_seconds = 0.0
    lam = opts.lam_on_batch_means(ctx.search.batch_size)
    signs = [c.weight.detach() >= 0 for c in convs]
    for (x, y), (xv, yv) in loop.paired(ctx.train_data, ctx.val_data, desc=f"epoch {epoch} child"):
        t_arch = time.perf_counter()
        teacher_v, g_parent = _parent_forward(parent, xv, parent_weights, yv if round_tangent is None else None)
        g_parent = round_tangent if g_parent is None else g_parent
        assert g_parent is not None  # the Parent gets labels (and gives g_P) exactly when there is no round tangent
        effectives = child.effectives()
        with child_forward_context(net, lam=lam, hessian=opts.hessian):
            logits_v = net(xv, **mixing_weights(effectives))
        step = tangent_arch_gradient(
            logits_v, teacher_v, effectives, g_parent, lam=lam, hessian=opts.hessian, distance=opts.distance
        )
        loop.check(step.loss, "child validation loss")
        child.arch_step(effectives, step.gradient, loop, eta)
        arch_seconds += time.perf_counter() - t_arch
        teacher, _ = _parent_forward(parent, x, parent_weights, None)
        with torch.no_grad():
            weights = mixing_weights(child.effectives())
        logits = net(x, **weights)
        kd = soft_cross_entropy(logits, teacher)
        recon = model_reconstruction_loss(convs, opts.reconstruction_reduction) if opts.mu > 0 and convs else None
        loss = loop.check(kd if recon is None else kd + opts.mu * recon, "child training loss")

        def balance_now() -> dict[str, float]:
            return _reconstruction_balance(convs, opts.mu, opts.reconstruction_reduction)

        balance = loop.weight_step(
            loss, child.w_opt, params, ctx.search.grad_clip, before_clip=None if recon is None else balance_now
        )
        child_grad_norm = float(flatten(step.child_gradient).norm())
        meter.update(
            len(yv),
            child_val_loss=step.loss.item(),
            child_val_acc=accuracy(logits_v, yv)[0],
            tangent_distance=step.distance,
            grad_gap_norm=step.gap_norm,
            tangent_correction_norm=step.correction_norm,
            child_grad_norm=child_grad_norm,
            tangent_ratio=step.correction_norm / max(child_grad_norm, 1e-30),
            parent_grad_norm=float(flatten(g_parent).norm()),
        )
        if balance:
            ratio = balance["child_recon_grad_norm"] / max(balance["child_kd_grad_norm"], 1e-30)
            meter.update(len(y), **balance, child_recon_kd_ratio=ratio)
        meter.update(
            len(y),
            child_train_loss=kd.item(),
            child_train_acc=accuracy(logits, y)[0],
            child_agreement=accuracy(logits, teacher.argmax(1))[0],
        )
        if recon is not None:
            meter.update(len(y), child_recon_loss=recon.item())
    child.decoupled.fold(alphas)
    flips = sum(int((c.weight.detach() >= 0).ne(s).sum()) for c, s in zip(convs, signs))
    total = sum(s.numel() for s in signs)
    return meter.means() | {
        "child_seconds": time.perf_counter() - t0,
        "child_arch_seconds": arch_seconds,
        "tangent_lambda": lam,
        "child_sign_flip_fraction": flips / max(total, 1),
    }
