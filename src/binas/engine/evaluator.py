"""Evaluating a network on a data set: top-1/top-5 accuracy and loss, exact under torchrun.

Model-agnostic: any `nn.Module` mapping images to logits. Under torchrun each rank scores a disjoint,
unpadded slice of the data set and the sums are all-reduced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Subset

from binas.data import make_loader
from binas.engine.loop import topk_correct
from binas.engine.runtime import all_reduce_mean, preferred_memory_format

TOPK = (1, 5)


@dataclass(frozen=True)
class EvalResult:
    """Top-1 / top-5 accuracy (percent) and mean cross-entropy on `samples` images."""

    top1: float
    top5: float
    loss: float
    samples: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _shard(dataset: Dataset, rank: int, world_size: int) -> Dataset:
    if world_size <= 1:
        return dataset
    return Subset(dataset, list(range(rank, len(dataset), world_size)))  # type: ignore[arg-type]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    device: torch.device | None = None,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
) -> EvalResult:
    """Top-1/top-5 accuracy and loss of `model` on `dataset`, in eval mode (the mode is restored).

    Under torchrun pass `rank`/`world_size`: each rank scores every `world_size`-th sample and the counts
    are summed over ranks, so the result is exactly the single-process one.
    """
    ref = next(iter(model.parameters()))
    device = device or ref.device
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64)  # loss, top1 hits, top5 hits, samples
    loader = make_loader(_shard(dataset, rank, world_size), batch_size, shuffle=False, seed=0, num_workers=num_workers)
    memory_format = preferred_memory_format(device)
    for x, y in loader:
        x = x.to(device, dtype=ref.dtype, memory_format=memory_format, non_blocking=True)
        y = y.to(device, non_blocking=True)
        logits = model(x).float()
        top1, top5 = topk_correct(logits, y, TOPK)
        sums += torch.tensor(
            [F.cross_entropy(logits, y, reduction="sum").item(), top1, top5, len(y)], dtype=torch.float64
        )
    model.train(was_training)
    if world_size > 1:
        sums = all_reduce_mean(sums) * world_size
    n = max(int(round(sums[3].item())), 1)
    return EvalResult(100.0 * sums[1].item() / n, 100.0 * sums[2].item() / n, sums[0].item() / n, n)
