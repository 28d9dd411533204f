"""BatchNorm over the global batch of all torchrun ranks, so N processes train what one process trains.

`convert_batchnorm` swaps in `nn.SyncBatchNorm` on CUDA and `GlobalBatchNorm` on CPU/Gloo (where
`SyncBatchNorm` does not run); both normalise over the batches of every rank with exact gradients.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward sums the gradients over ranks (each rank's loss depends on every rank's
    partial sums), so gradients stay exact under cross-rank statistics."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the batches of all ranks (differentiable all-reduce).

    Mean and variance are two-pass sums all-reduced over the process group; the all-reduce's backward
    sums the gradients, so with DDP's gradient averaging the result is the gradient of the global-batch
    loss. Outside a process group, or in eval mode, it is plain BatchNorm.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-d input, got {x.dim()}-d")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.full((1,), x.numel() / x.shape[1], dtype=x.dtype, device=x.device)
        sums = _AllReduceSum.apply(torch.cat([x.sum(dims), count]))
        n, mean = sums[-1], sums[:-1] / sums[-1]
        centered = x - mean.view(shape)
        var = _AllReduceSum.apply(centered.pow(2).sum(dims)) / n
        y = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            # _BatchNorm registers num_batches_tracked whenever it tracks running statistics.
            assert self.num_batches_tracked is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_((var * n / (n - 1)).detach(), alpha=m)
        return y


def convert_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Make every BatchNorm of `model` normalise over the global batch (in place; parameters are shared)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
            child, (GlobalBatchNorm, nn.SyncBatchNorm)
        ):
            new = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(model, name, new)
        else:
            convert_batchnorm(child, device)
    return model
