"""`ReidNet` on genotype and reference backbones: BN-neck, bias-free classifier, model file round trip."""

from __future__ import annotations

import pytest
import torch

import binas
from binas.errors import CheckpointError
from binas.nets.reid import ReidNet, ReidSpec, load_reid_model, policy_dict, save_reid_model
from binas.quant.policy import BinarizationPolicy


@pytest.mark.parametrize("name", ["darts-v2", "birealnet18"])
@pytest.mark.parametrize("policy", ["real", "released"])
def test_reid_net_on_any_backbone(name, policy):
    bb = binas.backbone(name, channels=4, layers=3, stem="cifar", policy=policy)
    net = ReidNet(bb, num_ids=7)
    out = net(torch.randn(4, 3, 16, 16))
    assert out.feature.shape == out.neck_feature.shape == (4, bb.out_channels[-1]) and out.logits.shape == (4, 7)
    assert net.classifier.bias is None and not net.neck.bias.requires_grad and net.neck.weight.requires_grad
    net.eval()
    assert torch.equal(net.embed(torch.zeros(2, 3, 16, 16)), net(torch.zeros(2, 3, 16, 16)).neck_feature)


def test_reid_net_without_neck_and_model_file_round_trip(tmp_path):
    spec = ReidSpec("darts-v2", 4, 3, "cifar", None, policy_dict(BinarizationPolicy.released()), 5, 3, 16, 8)
    net = spec.build()
    assert spec.binarization() == BinarizationPolicy.released()
    save_reid_model(tmp_path / "m.pt", spec, net, {"rank1": 0.5})
    loaded, spec2, metrics = load_reid_model(tmp_path / "m.pt")
    assert spec2 == spec and metrics == {"rank1": 0.5}
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values()))
    assert isinstance(ReidNet(binas.backbone("darts-v2", channels=4, layers=3, stem="cifar"), 3, neck=False).neck,
                      torch.nn.Identity)  # fmt: skip
    with pytest.raises(CheckpointError):
        load_reid_model(tmp_path)
