"""`binas.backbone`: stage feature maps at strides 8/16/32 feeding detection and re-ID heads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import binas
from binas.errors import ConfigError
from binas.genotype import get_genotype
from binas.nets.backbone import Backbone, backbone_from_checkpoint
from binas.nets.model_file import ModelSpec, save_model
from binas.quant.policy import BinarizationPolicy


def tiny(**kw) -> Backbone:
    return binas.backbone("darts-v2", channels=4, layers=3, **kw)


@pytest.mark.parametrize("policy", ["real", "released", "strict"])
def test_stage_maps_at_strides_8_16_32(policy):
    net = tiny(policy=policy)
    feats = net(torch.randn(2, 3, 64, 64))
    assert list(feats) == ["0", "1", "2"] and net.strides == [8, 16, 32]
    for (name, f), c, s in zip(feats.items(), net.out_channels, net.strides):
        assert f.shape == (2, c, 64 // s, 64 // s), name
    assert net.out_channels == [16, 32, 64]  # 4 nodes x C, doubling at each reduction
    assert not any(isinstance(m, nn.Linear) for m in net.modules())  # no classifier


def test_cifar_stem_strides_and_errors():
    net = tiny(stem="cifar")
    assert net.strides == [1, 2, 4]
    assert [f.shape[-1] for f in net(torch.randn(1, 3, 16, 16)).values()] == [16, 8, 4]
    with pytest.raises(ConfigError, match="stem"):
        tiny(stem="vit")
    with pytest.raises(ConfigError, match="3 cells"):
        binas.backbone("darts-v2", channels=4, layers=2)


def test_backbone_from_a_trained_checkpoint(tmp_path):
    spec = ModelSpec(
        get_genotype("darts-v2").to_dict(),
        10,
        3,
        4,
        3,
        "imagenet",
        "darts",
        ModelSpec.policy_dict(BinarizationPolicy.released()),
        False,
        "synthetic",
        32,
    )
    model = spec.build()
    save_model(tmp_path / "model.pt", spec, model)
    net = backbone_from_checkpoint(tmp_path / "model.pt")
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(net(x)["2"], model.forward_features(x)[2])


def test_reid_head_trains_on_the_backbone():
    """A re-ID head (global pooling + embedding + identity classifier) trained end to end for a few steps."""
    torch.manual_seed(0)
    body = tiny(policy="released")
    ids, embed = 4, 16
    head = nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(body.out_channels[-1], embed), nn.BatchNorm1d(embed)
    )
    classifier = nn.Linear(embed, ids)
    params = [*body.parameters(), *head.parameters(), *classifier.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-2)
    x = torch.randn(ids, 3, 32, 32).repeat(4, 1, 1, 1) + 0.1 * torch.randn(4 * ids, 3, 32, 32)
    y = torch.arange(ids).repeat(4)
    losses = []
    for _ in range(8):
        emb = head(body(x)["2"])
        loss = nn.functional.cross_entropy(classifier(emb), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert emb.shape == (4 * ids, embed) and losses[-1] < losses[0]


def test_torchvision_detection_head_when_available():
    torchvision = pytest.importorskip("torchvision")
    from torchvision.models.detection import FasterRCNN
    from torchvision.ops import FeaturePyramidNetwork

    class WithFPN(nn.Module):
        def __init__(self, body: Backbone, channels: int) -> None:
            super().__init__()
            self.body, self.fpn, self.out_channels = body, FeaturePyramidNetwork(body.out_channels, channels), channels

        def forward(self, x):
            return self.fpn(self.body(x))

    model = FasterRCNN(
        WithFPN(tiny(), 16),
        num_classes=3,
        min_size=64,
        max_size=64,
        rpn_anchor_generator=torchvision.models.detection.anchor_utils.AnchorGenerator(
            ((16,), (32,), (64,)), ((1.0,),) * 3
        ),
    )
    images = [torch.rand(3, 64, 64)]
    targets = [{"boxes": torch.tensor([[4.0, 4.0, 40.0, 40.0]]), "labels": torch.tensor([1])}]
    losses = model(images, targets)
    sum(losses.values()).backward()
    model.eval()
    assert "boxes" in model(images)[0]
