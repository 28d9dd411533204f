"""`Network` from a genotype: published parameter counts, real/binary forward and backward, aux head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from binas.errors import ShapeError
from binas.genotype import get_genotype
from binas.nets import Network, drop_path
from binas.quant.layers import QuantConv2d, quant_convs
from binas.quant.policy import BinarizationPolicy

#: DARTS_V2, CIFAR-10, C=36, 20 cells, no auxiliary head: DARTS's published 3.3M (3,349,342).
DARTS_V2_CIFAR_PARAMS = 3349342
#: DARTS_V2, ImageNet mobile setting, C=48, 14 cells: DARTS's published 4.7M (4,718,752).
DARTS_V2_IMAGENET_PARAMS = 4718752
#: The same CIFAR network 1-bit (darts family, released or strict policy): + one affine BN on C_in
#: between the depth-wise and the binary-input point-wise conv of every sep/dil conv block.
DARTS_V2_CIFAR_BINARY_PARAMS = 3382606


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def darts_v2_cifar() -> Network:
    return Network(get_genotype("darts-v2"), num_classes=10, channels=36, layers=20)


def test_darts_v2_cifar_param_count(darts_v2_cifar: Network) -> None:
    assert n_params(darts_v2_cifar) == DARTS_V2_CIFAR_PARAMS
    assert darts_v2_cifar.aux_head is None
    assert not quant_convs(darts_v2_cifar)


def test_binary_darts_family_adds_a_bn_per_conv_block(darts_v2_cifar: Network) -> None:
    genotype = get_genotype("darts-v2")
    for policy in (BinarizationPolicy.released(), BinarizationPolicy.strict()):
        net = Network(genotype, num_classes=10, channels=36, layers=20, policy=policy)
        assert n_params(net) == DARTS_V2_CIFAR_BINARY_PARAMS
        blocks = [
            m
            for m in net.modules()
            if isinstance(m, nn.Sequential) and any(isinstance(c, QuantConv2d) and c.groups > 1 for c in m.children())
        ]
        extra = sum(2 * block[-2].in_channels for block in blocks)  # 2 C_in affine params per block
        assert n_params(net) - n_params(darts_v2_cifar) == extra > 0


def test_published_imagenet_and_pc_darts_param_counts() -> None:
    imagenet = Network(get_genotype("darts-v2"), num_classes=1000, channels=48, layers=14, stem="imagenet")
    assert n_params(imagenet) == DARTS_V2_IMAGENET_PARAMS
    pc = Network(get_genotype("pc-darts"), num_classes=10, channels=36, layers=20)
    assert round(n_params(pc) / 1e6, 1) == 3.6  # PC-DARTS reports 3.6M


@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
@pytest.mark.parametrize("policy", ["real", "released", "strict"])
@pytest.mark.parametrize("family", ["darts", "dcp"])
@pytest.mark.parametrize("genotype", ["darts-v2", "dcp-nas-l"])
def test_tiny_network_forward_backward(genotype: str, family: str, policy: str, stem: str) -> None:
    torch.manual_seed(0)
    net = Network(
        get_genotype(genotype),
        num_classes=7,
        channels=4,
        layers=3,
        stem=stem,
        family=family,
        policy=BinarizationPolicy.preset(policy),
    )
    x = torch.randn(2, 3, 16, 16) if stem == "cifar" else torch.randn(2, 3, 32, 32)
    y = net(x)
    assert y.shape == (2, 7) and torch.isfinite(y).all()
    y.logsumexp(dim=1).sum().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert len(grads) > 0 and all(torch.isfinite(g).all() for g in grads)
    assert (len(quant_convs(net)) > 0) == (policy != "real")


def test_stem_and_classifier_stay_real() -> None:
    net = Network(
        get_genotype("dcp-nas-l"),
        num_classes=5,
        channels=4,
        layers=3,
        stem="imagenet",
        family="dcp",
        policy=BinarizationPolicy.strict(),
    )
    for module in (net.stem, net.classifier):
        assert not any(isinstance(m, QuantConv2d) and m.binary_weights for m in module.modules())
    assert isinstance(net.classifier, nn.Linear)


def tiny(**kw: object) -> Network:
    torch.manual_seed(0)
    return Network(get_genotype("darts-v2"), num_classes=5, channels=4, layers=5, **kw)  # type: ignore[arg-type]


def test_auxiliary_head_only_in_training() -> None:
    net = tiny(auxiliary=True)
    assert net.aux_head is not None and net.aux_index == 3  # after the second reduction (cells 1, 3)
    x = torch.randn(2, 3, 16, 16)
    logits, aux = net.train().forward_with_aux(x)
    assert logits.shape == (2, 5) and aux is not None and aux.shape == (2, 5)
    logits, aux = net.eval().forward_with_aux(x)
    assert aux is None and torch.equal(net(x), logits)
    assert tiny().forward_with_aux(x)[1] is None


def test_drop_path_keeps_the_expectation() -> None:
    torch.manual_seed(0)
    x = torch.ones(20000, 1, 1, 1)
    y = drop_path(x, 0.3)
    assert torch.allclose(torch.unique(y), torch.tensor([0.0, 1 / 0.7]))  # whole samples dropped or rescaled
    assert abs(y.mean().item() - 1.0) < 0.03  # std of the mean is ~0.005


def test_drop_path_is_inactive_in_eval_and_at_zero() -> None:
    net = tiny(drop_path_prob=0.5)
    x = torch.randn(2, 3, 16, 16)
    net.eval()
    with torch.no_grad():
        dropped = net(x)
        net.drop_path_prob = 0.0
        assert torch.equal(net(x), dropped)
        net.train()
        assert torch.equal(net(x), net(x))  # no randomness left with probability 0
        net.drop_path_prob = 0.5
        torch.manual_seed(1)
        assert not torch.equal(net(x), net(x))


def test_forward_features_imagenet_stem_strides_and_channels() -> None:
    net = Network(get_genotype("darts-v2"), num_classes=5, channels=8, layers=5, stem="imagenet")
    feats = net.forward_features(torch.randn(1, 3, 64, 64))
    assert net.stage_ends == [0, 2, 4] and net.stage_channels == [32, 64, 128]  # 4 nodes x C, 2C, 4C
    assert [tuple(f.shape) for f in feats] == [(1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2)]


@pytest.mark.parametrize("shape", [(2, 1, 16, 16), (2, 4, 16, 16), (3, 16, 16), (1, 2, 3, 16, 16)])
def test_wrong_input_shape_raises_shape_error(darts_v2_cifar: Network, shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape)
    for forward in (darts_v2_cifar, darts_v2_cifar.forward_features, darts_v2_cifar.forward_with_aux):
        with pytest.raises(ShapeError, match="expected input"):
            forward(x)
