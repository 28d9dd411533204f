"""Evaluating a network, and the model checkpoints `binas eval` / `binas export` / KD teachers read.

A model checkpoint (kind `model`) holds a `ModelSpec` (everything needed to rebuild the network: genotype,
shape, binarization policy, data set and image size), the weights, and the metrics it was saved with.
Evaluation under torchrun is exact: each rank scores a disjoint, unpadded slice of the data set and the
sums are all-reduced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Subset

from binas.data import make_loader
from binas.engine.checkpoint import load_checkpoint, save_checkpoint
from binas.engine.runtime import preferred_memory_format
from binas.errors import CheckpointError
from binas.genotype import Genotype
from binas.quant.policy import BinarizationPolicy

MODEL_KIND = "model"
TRAIN_KIND = "train"  # a training checkpoint: `checkpoint.pt` of a run (binas.engine.trainer)
#: The file a training run writes its final network to; a run directory given as a model means this file.
MODEL_NAME = "model.pt"
TOPK = (1, 5)


@dataclass(frozen=True)
class ModelSpec:
    """How to rebuild a trained `binas.nets.Network` (plain data, stored in every model checkpoint)."""

    genotype: dict[str, Any]
    num_classes: int
    in_channels: int
    channels: int
    layers: int
    stem: str
    family: str
    policy: dict[str, Any]
    auxiliary: bool
    dataset: str
    image_size: int
    stem_multiplier: int = 3
    data_dir: str | None = None

    @staticmethod
    def policy_dict(policy: BinarizationPolicy) -> dict[str, Any]:
        return {"name": policy.name, "weights": sorted(policy.weights), "activations": sorted(policy.activations),
                "act_quantizer": policy.act_quantizer, "weight_quantizer": policy.weight_quantizer}

    def binarization(self) -> BinarizationPolicy:
        p = self.policy
        return BinarizationPolicy(frozenset(p["weights"]), frozenset(p["activations"]), p["act_quantizer"],
                                  p["weight_quantizer"], p["name"])

    @property
    def input_size(self) -> tuple[int, int, int, int]:
        return (1, self.in_channels, self.image_size, self.image_size)

    def build(self, *, auxiliary: bool | None = None) -> nn.Module:
        """A freshly initialised network of this shape (no weights loaded)."""
        from binas.nets import Network

        return Network(Genotype.from_dict(self.genotype), num_classes=self.num_classes,
                       in_channels=self.in_channels, channels=self.channels, layers=self.layers, stem=self.stem,
                       stem_multiplier=self.stem_multiplier, family=self.family, policy=self.binarization(),
                       auxiliary=self.auxiliary if auxiliary is None else auxiliary)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "checkpoint") -> ModelSpec:
        try:
            return cls(**data)
        except TypeError as exc:
            raise CheckpointError(f"{where} has a malformed model spec: {exc}") from None


def save_model(path: str | Path, spec: ModelSpec, model: nn.Module, metrics: dict[str, Any] | None = None) -> Path:
    """Write a `model` checkpoint: spec, CPU weights and metrics (atomic)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save_checkpoint(path, {"spec": spec.to_dict(), "state_dict": state, "metrics": metrics or {}},
                           kind=MODEL_KIND)


def resolve_model_path(path: str | Path) -> Path:
    """A model file, or a training run directory (its `model.pt`)."""
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL_NAME).is_file():
            raise CheckpointError(f"{path} has no {MODEL_NAME}: not a finished training run")
        return path / MODEL_NAME
    return path


def load_model(path: str | Path, *, map_location: Any = "cpu") -> tuple[nn.Module, ModelSpec, dict[str, Any]]:
    """Rebuild the network of a model checkpoint, a training run directory (its `model.pt`) or a training
    `checkpoint.pt` (the network of the epoch it was taken at), in eval mode on the CPU.

    Returns (model, spec, the metrics saved with it).
    """
    path = resolve_model_path(path)
    payload = load_checkpoint(path, map_location=map_location)
    weights_key = "state_dict" if "state_dict" in payload else "model"
    if "spec" not in payload or weights_key not in payload:
        raise CheckpointError(f"{path} holds no trained network (no model spec); give a training run's "
                              f"{MODEL_NAME}, its directory or its checkpoint.pt")
    spec = ModelSpec.from_dict(payload["spec"], str(path))
    model = spec.build(auxiliary=False)
    state = {k: v for k, v in payload[weights_key].items() if not k.startswith("aux_head.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the network its spec describes: "
                              f"{str(exc).splitlines()[0]}") from None
    return model.eval(), spec, payload.get("metrics", payload.get("record", {}))



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
    loader = make_loader(_shard(dataset, rank, world_size), batch_size, shuffle=False, seed=0,
                         num_workers=num_workers)
    memory_format = preferred_memory_format(device)
    for x, y in loader:
        x = x.to(device, dtype=ref.dtype, memory_format=memory_format, non_blocking=True)
        y = y.to(device, non_blocking=True)
        logits = model(x).float()
        k = min(max(TOPK), logits.shape[1])
        hits = logits.topk(k, dim=1).indices.eq(y[:, None])
        sums += torch.tensor([F.cross_entropy(logits, y, reduction="sum").item(), hits[:, :1].sum().item(),
                              hits.sum().item(), len(y)], dtype=torch.float64)
    model.train(was_training)
    if world_size > 1:
        from binas.engine.runtime import all_reduce_mean

        sums = all_reduce_mean(sums) * world_size
    n = max(int(round(sums[3].item())), 1)
    return EvalResult(100.0 * sums[1].item() / n, 100.0 * sums[2].item() / n, sums[0].item() / n, n)
