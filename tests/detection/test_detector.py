"""The CenterNet-style head: target assignment, decode round trip, loss going down, any backbone shape."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from binas.nets.backbone import backbone
from binas.nets.centernet import decode, detection_loss, encode_targets, ltrb_from_boxes
from binas.nets.detector import Detector
from binas.quant.policy import BinarizationPolicy

STRIDE = 8
TARGETS = [
    {"boxes": torch.tensor([[4.0, 6.0, 20.0, 22.0], [30.0, 30.0, 50.0, 46.0]]), "labels": torch.tensor([3, 7])},
    {"boxes": torch.tensor([[40.0, 2.0, 60.0, 20.0]]), "labels": torch.tensor([0]), "difficult": torch.tensor([False])},
]


def test_targets_put_one_at_each_centre_cell_and_regress_its_box_there():
    heat, box, weight = encode_targets(TARGETS, 10, (8, 8), STRIDE)
    assert int(heat.eq(1).sum()) == 3
    assert heat[0, 3, 14 // STRIDE, 12 // STRIDE] == 1 and heat[0, 7, 38 // STRIDE, 40 // STRIDE] == 1
    assert heat[1, 0, 11 // STRIDE, 50 // STRIDE] == 1
    assert torch.equal(box[0, 1, 1], TARGETS[0]["boxes"][0]) and weight[0, 1, 1] == 1
    assert heat[0, 3].max() == 1 and heat[0, 5].max() == 0  # only the object's own class


def test_difficult_objects_get_no_target():
    target = [
        {"boxes": torch.tensor([[4.0, 4, 20, 20]]), "labels": torch.tensor([1]), "difficult": torch.tensor([True])}
    ]
    heat, _, weight = encode_targets(target, 3, (8, 8), STRIDE)
    assert heat.sum() == 0 and weight.sum() == 0


def test_decode_of_the_encoded_targets_gives_back_the_boxes():
    heat, box, _ = encode_targets(TARGETS, 10, (8, 8), STRIDE)
    outputs = {"heat": torch.logit(heat.clamp(1e-6, 1 - 1e-6)), "ltrb": ltrb_from_boxes(box, STRIDE)}
    found = decode(outputs, STRIDE, 64, top_k=10, score_threshold=0.5)
    for pred, target in zip(found, TARGETS):
        order = pred["labels"].argsort()
        expected = target["labels"].argsort()
        assert torch.equal(pred["labels"][order], target["labels"][expected])
        assert torch.allclose(pred["boxes"][order], target["boxes"][expected], atol=1e-4)


class _Stub(nn.Module):
    """A backbone by the contract only: three maps at strides 8/16/32."""

    out_channels = [4, 6, 8]
    strides = [8, 16, 32]

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(3 if i == 0 else c, c2, 3, 2, 1) for i, (c, c2) in enumerate([(3, 4), (4, 6), (6, 8)])
        )
        self.stem = nn.Conv2d(3, 3, 3, 4, 1)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        x = self.stem(x)
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        for i, conv in enumerate(self.convs):
            x = conv(x) if i == 0 else conv(x)
            out[str(i)] = x
        return out


def test_any_backbone_by_contract_and_upsampled_output():
    torch.manual_seed(0)
    det = Detector(_Stub(), 5, neck_channels=8, head_channels=8, upsample=1)
    out = det(torch.randn(2, 3, 64, 64))
    assert det.stride == 4 and out["heat"].shape == (2, 5, 16, 16) and out["ltrb"].shape == (2, 4, 16, 16)


def test_loss_decreases_on_a_fixed_batch_for_a_1bit_backbone():
    torch.manual_seed(0)
    body = backbone("darts-v2", channels=4, layers=3, policy=BinarizationPolicy.preset("released"))
    det = Detector(body, 10, neck_channels=8, head_channels=8)
    x = torch.randn(2, 3, 64, 64)
    opt = torch.optim.Adam(det.parameters(), 3e-3)
    losses = []
    for _ in range(8):
        loss, parts = detection_loss(det(x), TARGETS, det.stride)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert set(parts) == {"train_heat", "train_giou"}
    assert losses[-1] < 0.85 * losses[0]


def test_a_reference_backbone_two_step_init_and_forward():
    from binas.config.detect import DetectConfig, DetectorConfig
    from binas.optim.two_step import init_from_previous
    from binas.workflows.detect import build_detector

    cfg = DetectConfig(model=DetectorConfig(backbone="birealnet18", channels=8, neck_channels=8, head_channels=8))
    policy = BinarizationPolicy.preset("released")
    step2 = build_detector(cfg, 10, policy)
    init_from_previous(step2, build_detector(cfg, 10, policy.activations_only()).state_dict())
    assert step2(torch.randn(1, 3, 64, 64))["heat"].shape == (1, 10, 8, 8)


def test_phase_plans_and_the_distillation_term():
    from binas.config.detect import DetectConfig, DetectTrainConfig, DistillConfig
    from binas.objectives.detection import head_distill_loss
    from binas.workflows.detect import plan_detect_phases

    names = [p.name for p in plan_detect_phases(DetectConfig(distill=DistillConfig(weight=1.0)))]
    assert names == ["teacher", "step1", "step2"]
    assert [p.name for p in plan_detect_phases(DetectConfig())] == ["step1", "step2"]
    real = plan_detect_phases(DetectConfig(train=DetectTrainConfig(binary=False)))
    assert [(p.name, p.policy.is_real) for p in real] == [("train", True)]
    out = {"heat": torch.randn(2, 3, 4, 4), "neck": torch.randn(2, 5, 4, 4)}
    assert float(head_distill_loss(out, {k: v.detach() for k, v in out.items()})) == 0.0
    assert float(head_distill_loss(out, {"heat": -out["heat"].detach(), "neck": out["neck"] + 1})) > 1.0
