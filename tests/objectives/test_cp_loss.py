"""The CP-NAS kernel-level loss (Eq. 4.17) on hand-computed examples."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from binas.errors import ConfigError, ShapeError
from binas.nets.network import NetworkOutput
from binas.objectives.cp_loss import (
    CPLoss,
    cp_kernel_loss,
    intraclass_compactness,
    kernel_reconstruction_mse,
)
from binas.quant.layers import QuantConv2d

# Filter 0: beta = mean|H| = 0.8, H_hat = 0.8 * sign(H), H - H_hat = (-0.3, -0.7, 0.2, 0.6): MSE 0.98 / 4.
# Filter 1: all |H| equal, so H_hat = H and its MSE is 0.
KERNEL = [[0.5, -1.5], [1.0, -0.2]], [[0.25, 0.25], [-0.25, 0.25]]
KERNEL_MSE = 0.245
KERNEL_GRAD = [[[-0.15, -0.35], [0.1, 0.3]], [[0.0, 0.0], [0.0, 0.0]]]  # 2 (H - H_hat) / 4
# Class 0 features (1, 2) and (3, 4) have mean (2, 3): squared distances 2 and 2; class 1 is constant.
FEATURES = [[1.0, 2.0], [3.0, 4.0], [5.0, 5.0], [5.0, 5.0]]
LABELS = [0, 0, 1, 1]
COMPACTNESS_SUM = 4.0


def _one_conv(weight_quantizer: str = "mean_abs") -> nn.Module:
    model = nn.Sequential(QuantConv2d(1, 2, 2, weight_quantizer=weight_quantizer, input_quantizer="approx_sign"))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(KERNEL, dtype=torch.float64).unsqueeze(1))
    return model.double()


def _features() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(FEATURES, dtype=torch.float64, requires_grad=True), torch.tensor(LABELS)


def test_kernel_mse_value_and_gradient():
    model = _one_conv()
    loss = kernel_reconstruction_mse(model)
    assert loss.item() == pytest.approx(KERNEL_MSE)
    loss.backward()
    expected = torch.tensor(KERNEL_GRAD, dtype=torch.float64).unsqueeze(1)
    torch.testing.assert_close(model[0].weight.grad, expected)


def test_kernel_mse_is_zero_for_real_convs_and_sums_over_layers():
    real = nn.Sequential(QuantConv2d(1, 2, 2), nn.Conv2d(2, 2, 1))
    assert kernel_reconstruction_mse(real).item() == 0.0
    two = nn.Sequential(_one_conv(), _one_conv())
    assert kernel_reconstruction_mse(two).item() == pytest.approx(2 * KERNEL_MSE)


def test_learned_scale_receives_a_gradient():
    model = _one_conv("learned_scale")
    kernel_reconstruction_mse(model).backward()
    assert model[0].weight_quantizer.m.grad is not None
    assert model[0].weight_quantizer.m.grad.abs().sum() > 0


@pytest.mark.parametrize("reduction, value", [("sum", COMPACTNESS_SUM), ("mean", COMPACTNESS_SUM / len(LABELS))])
def test_intraclass_value_and_gradient(reduction, value):
    f, y = _features()
    loss = intraclass_compactness(f, y, reduction=reduction)
    assert loss.item() == pytest.approx(value)
    loss.backward()
    centers = torch.tensor([[2.0, 3.0], [2.0, 3.0], [5.0, 5.0], [5.0, 5.0]], dtype=torch.float64)
    scale = 1.0 if reduction == "sum" else 1.0 / len(LABELS)
    torch.testing.assert_close(f.grad, 2 * scale * (f.detach() - centers))


def test_intraclass_is_zero_when_each_class_is_constant():
    f = torch.tensor([[1.0, 2.0], [7.0, 0.0], [1.0, 2.0], [7.0, 0.0]]).reshape(4, 1, 1, 2).expand(4, 3, 2, 2)
    assert intraclass_compactness(f, torch.tensor([3, 1, 3, 1])).item() == 0.0
    assert intraclass_compactness(torch.randn(3, 5), torch.tensor([0, 1, 2])).item() == 0.0  # singletons


def test_cp_kernel_loss_combines_terms_with_half_lambda():
    model = _one_conv()
    f, y = _features()
    lam = 0.5
    loss = cp_kernel_loss(model, f, y, lam=lam, reduction="sum")
    assert loss.item() == pytest.approx(KERNEL_MSE + lam / 2 * COMPACTNESS_SUM)
    loss.backward()
    assert model[0].weight.grad is not None and f.grad is not None


def test_cp_loss_module_adds_cross_entropy():
    model = _one_conv()
    f, y = _features()
    logits = torch.zeros(4, 3, dtype=torch.float64)  # uniform over 3 classes: CE = log 3
    out = NetworkOutput(logits=logits, aux_logits=None, features=f)
    loss = CPLoss(lam=0.5, reduction="mean")(model, out, y)
    expected = torch.log(torch.tensor(3.0)).item() + KERNEL_MSE + 0.25 * COMPACTNESS_SUM / 4
    assert loss.item() == pytest.approx(expected)
    assert list(CPLoss().parameters()) == []


def test_bad_input_is_a_binas_error():
    f, y = _features()
    with pytest.raises(ShapeError):
        intraclass_compactness(f, y[:3])
    with pytest.raises(ConfigError):
        intraclass_compactness(f, y, reduction="median")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        CPLoss(lam=-1.0)


def test_works_with_a_binary_network_forward():
    from binas.genotype import get_genotype
    from binas.nets.network import Network
    from binas.quant.policy import BinarizationPolicy

    torch.manual_seed(0)
    net = Network(
        get_genotype("darts-v2"), num_classes=3, channels=4, layers=3, policy=BinarizationPolicy.preset("strict")
    )
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    out = net.forward_all(x)
    loss = CPLoss()(net, out, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(c.weight.grad is not None for c in net.modules() if isinstance(c, QuantConv2d) and c.binary_weights)
