"""The model file: a trained network's `ModelSpec`, weights and metrics (`model.pt`, `step1.pt`, ...).

A model checkpoint (kind `model`) holds a `ModelSpec` (everything needed to rebuild the network:
genotype, shape, binarization policy, data set and image size), the weights, and the metrics it was
saved with. `binas eval`, `binas export`, KD teachers and `binas.backbone` read it.

`arch` names a hand-designed reference network (`binas.nets.reference.REFERENCE_NETWORKS`: `birealnet18`,
`reactnet-a`) built instead of a genotype's `Network`; then `channels` is its base width, `stem` its stem,
`layers` its number of blocks (fixed by the architecture), and `genotype` is empty. Files written before
the field existed have no `arch`: the genotype's network, as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeAlias

from torch import nn

from binas.errors import CheckpointError
from binas.genotype import Genotype
from binas.nets.network import Network
from binas.nets.reference import build_reference
from binas.nets.reference_base import ReferenceNetwork
from binas.quant.policy import BinarizationPolicy
from binas.run_files import MODEL_FILE
from binas.storage.checkpoint import load_checkpoint, save_checkpoint

MODEL_KIND = "model"
#: What `ModelSpec.build` returns: a genotype's network or a reference network (the same training interface).
BuiltNetwork: TypeAlias = Network | ReferenceNetwork


@dataclass(frozen=True)
class ModelSpec:
    """How to rebuild a trained network (plain data, stored in every model checkpoint); `arch` None: the
    `binas.nets.Network` of `genotype`, else the named reference network."""

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
    arch: str | None = None

    @staticmethod
    def policy_dict(policy: BinarizationPolicy) -> dict[str, Any]:
        return policy.to_dict()

    def binarization(self) -> BinarizationPolicy:
        return BinarizationPolicy.from_dict(self.policy)

    def describe(self) -> str:
        """The network's shape in words, for reports: `darts family, C=16, 5 cells` or
        `birealnet18, width 64, imagenet stem`."""
        if self.arch is not None:
            return f"{self.arch}, width {self.channels}, {self.stem} stem"
        return f"{self.family} family, C={self.channels}, {self.layers} cells"

    @property
    def input_size(self) -> tuple[int, int, int, int]:
        return (1, self.in_channels, self.image_size, self.image_size)

    def build(self, *, auxiliary: bool | None = None) -> BuiltNetwork:
        """A freshly initialised network of this shape (no weights loaded); reference networks have no
        auxiliary head."""
        if self.arch is not None:
            return build_reference(
                self.arch,
                num_classes=self.num_classes,
                in_channels=self.in_channels,
                channels=self.channels,
                stem=self.stem,
                policy=self.binarization(),
            )
        return Network(
            Genotype.from_dict(self.genotype),
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            channels=self.channels,
            layers=self.layers,
            stem=self.stem,
            stem_multiplier=self.stem_multiplier,
            family=self.family,
            policy=self.binarization(),
            auxiliary=self.auxiliary if auxiliary is None else auxiliary,
        )

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
    return save_checkpoint(
        path, {"spec": spec.to_dict(), "state_dict": state, "metrics": metrics or {}}, kind=MODEL_KIND
    )


def resolve_model_path(path: str | Path) -> Path:
    """A model file, or a training run directory (its `model.pt`)."""
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise CheckpointError(f"{path} has no {MODEL_FILE}: not a finished training run")
        return path / MODEL_FILE
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
        raise CheckpointError(
            f"{path} holds no trained network (no model spec); give a training run's "
            f"{MODEL_FILE}, its directory or its checkpoint.pt"
        )
    spec = ModelSpec.from_dict(payload["spec"], str(path))
    model = spec.build(auxiliary=False)
    state = {k: v for k, v in payload[weights_key].items() if not k.startswith("aux_head.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: weights do not fit the network its spec describes: {str(exc).splitlines()[0]}"
        ) from None
    return model.eval(), spec, payload.get("metrics", payload.get("record", {}))
