"""`ReidNet`: a re-identification embedding model on any `binas.backbone`, and its model file.

Head of "Bag of Tricks" (Luo et al., 2019): global average pooling of the backbone's last map gives the
feature f_t (the triplet loss's), a BatchNorm1d "BN-neck" with a frozen zero shift gives f_i (the ID
loss's and, at test time, the embedding), and a bias-free linear classifier over the training
identities. The backbone is 1-bit or real as its policy says; the head is real, like every classifier in
binas. Only the backbone contract is used: `forward(x) -> OrderedDict` of maps (the last is pooled) and
`out_channels`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from torch import Tensor, nn

from binas.errors import CheckpointError
from binas.nets.backbone import backbone
from binas.quant.policy import BinarizationPolicy
from binas.run_files import MODEL_FILE
from binas.storage.checkpoint import load_checkpoint, save_checkpoint

REID_MODEL_KIND = "reid-model"
#: Bag of Tricks initialises the classifier with N(0, 0.001^2).
CLASSIFIER_INIT_STD = 1e-3


class ReidOutput(NamedTuple):
    """What `ReidNet.forward` returns: pooled feature (triplet), BN-neck feature (ID loss, test), logits."""

    feature: Tensor
    neck_feature: Tensor
    logits: Tensor


class ReidNet(nn.Module):
    """Backbone -> global average pooling -> BN-neck -> bias-free identity classifier."""

    def __init__(self, backbone: nn.Module, num_ids: int, *, neck: bool = True) -> None:
        super().__init__()
        channels = getattr(backbone, "out_channels", None)
        if not channels:
            raise TypeError("a re-ID backbone must list its maps' channels in `out_channels`")
        self.backbone = backbone
        self.dim = int(channels[-1])
        self.neck: nn.Module = nn.BatchNorm1d(self.dim) if neck else nn.Identity()
        if isinstance(self.neck, nn.BatchNorm1d):
            self.neck.bias.requires_grad_(False)  # Bag of Tricks: no shift, so f_i stays centred for the ID loss
        self.classifier = nn.Linear(self.dim, num_ids, bias=False)
        nn.init.normal_(self.classifier.weight, std=CLASSIFIER_INIT_STD)

    def forward(self, x: Tensor) -> ReidOutput:
        maps = self.backbone(x)
        last = maps[next(reversed(maps))] if isinstance(maps, dict) else maps
        feature = last.mean(dim=(2, 3))
        neck_feature = self.neck(feature)
        return ReidOutput(feature, neck_feature, self.classifier(neck_feature))

    def embed(self, x: Tensor) -> Tensor:
        """The retrieval embedding: the BN-neck feature (Bag of Tricks' test feature)."""
        return self.forward(x).neck_feature


@dataclass(frozen=True)
class ReidSpec:
    """Everything needed to rebuild a `ReidNet` (saved in its model file)."""

    backbone: str  # what `binas.backbone` reads: a zoo name or a genotype as JSON text
    channels: int
    layers: int
    stem: str
    family: str | None
    policy: dict[str, Any]
    num_ids: int
    in_channels: int
    height: int
    width: int
    neck: bool = True
    dataset: str = ""

    @property
    def input_size(self) -> tuple[int, int, int, int]:
        return (1, self.in_channels, self.height, self.width)

    def binarization(self) -> BinarizationPolicy:
        return BinarizationPolicy.from_dict(self.policy)

    def with_policy(self, policy: BinarizationPolicy) -> ReidSpec:
        return ReidSpec(**{**asdict(self), "policy": policy_dict(policy)})

    def build_backbone(self) -> nn.Module:
        return backbone(
            self.backbone,
            channels=self.channels,
            layers=self.layers,
            stem=self.stem,
            family=self.family,
            policy=self.binarization(),
            in_channels=self.in_channels,
        )

    def build(self) -> ReidNet:
        """A freshly initialised network of this spec."""
        return ReidNet(self.build_backbone(), self.num_ids, neck=self.neck)


def policy_dict(policy: BinarizationPolicy) -> dict[str, Any]:
    """A policy as plain data (the inverse of `ReidSpec.binarization`)."""
    return policy.to_dict()


def save_reid_model(path: str | Path, spec: ReidSpec, model: nn.Module, metrics: dict[str, Any] | None = None) -> Path:
    """Write a re-ID model file: spec, CPU weights, metrics (atomic)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save_checkpoint(
        path, {"spec": asdict(spec), "state_dict": state, "metrics": metrics or {}}, kind=REID_MODEL_KIND
    )


def load_reid_model(path: str | Path) -> tuple[ReidNet, ReidSpec, dict[str, Any]]:
    """The `ReidNet` of a model file or a finished `binas reid` run directory (its `model.pt`), eval mode."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: no re-ID model file (a finished `binas reid` run has {MODEL_FILE})")
    payload = load_checkpoint(path, kind=REID_MODEL_KIND)
    try:
        spec = ReidSpec(**payload["spec"])
    except TypeError as exc:
        raise CheckpointError(f"{path}: unreadable re-ID model spec ({exc})") from None
    model = spec.build()
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the spec's network: {str(exc).splitlines()[0]}") from None
    return model.eval(), spec, payload.get("metrics", {})
