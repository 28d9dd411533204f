"""The released DCP-NAS-L network, module for module against the official release.

Release facts used here (YanjingLi0202/DCP-NAS): `models/darts_cnn_m.py` (NetworkImageNet: stems,
cells, classifier), `models/darts_cell_m.py` (Training_Cell), `models/darts_ops_step2_sc_out.py` (ops,
BatchNorm eps), `binary/MConv_new.py` + `binary/MFunction_new.py` (MConv), `utils/genotypes_m.py`.
The `Ref*` modules below are an independent construction written from that structure; the test copies
binas's weights into them and compares float64 forwards.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from binas.config.io import from_dict, load_yaml
from binas.config.preset_files import get_preset
from binas.config.schema import RunConfig
from binas.genotype import Genotype, get_entry, get_genotype
from binas.nets import Network
from binas.quant.policy import BinarizationPolicy
from binas.space.stems import ImageNetStem

RELEASED = ("dcp-nas-l", "dcp-nas-tangent-1", "dcp-nas-tangent-2")


# ---- the reference: the release's structure, written out -------------------------------------------


class RefMConv(nn.Module):
    """MConv: kernel 0.02 * sign(W) * |M| (M per output channel); `binary` signs the input first."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        k: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        binary: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in // groups, k, k))
        self.MFilters = nn.Parameter(torch.randn(c_out, 1, 1, 1))
        self.stride, self.padding, self.dilation, self.groups, self.binary = stride, padding, dilation, groups, binary

    def forward(self, x: Tensor) -> Tensor:
        if self.binary:
            x = torch.sign(x)
        w = torch.sign(self.weight) * 0.02 * self.MFilters.abs()
        return F.conv2d(x, w, None, self.stride, self.padding, self.dilation, self.groups)


class RefReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.BatchNorm2d(c_in), RefMConv(c_in, c_out, 1), nn.BatchNorm2d(c_out, eps=0.001), nn.PReLU(c_out)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class RefFactorizedReduce(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(c_in)
        self.conv1 = RefMConv(c_in, c_out // 2, 1, stride=2)
        self.conv2 = RefMConv(c_in, c_out // 2, 1, stride=2)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)
        self.relu = nn.PReLU(c_out)

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.bn0(x)
        return self.relu(self.bn(torch.cat([self.conv1(x1), self.conv2(x1[:, :, 1:, 1:])], dim=1)))


class RefDilConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int, padding: int, dilation: int) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(c_in, eps=0.001)
        self.conv1 = RefMConv(c_in, c_in, k, stride, padding, dilation, groups=c_in)
        self.bn1 = nn.BatchNorm2d(c_in, eps=0.001)
        self.relu0 = nn.PReLU(c_in)
        self.conv2 = RefMConv(c_in, c_out, 1, binary=True)
        self.bn2 = nn.BatchNorm2d(c_out, eps=0.001)
        self.relu1 = nn.PReLU(c_out)
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(self.relu0(self.bn1(self.conv1(self.bn0(x))))))
        return self.relu1(x + y if self.stride == 1 else y)


class RefPoolBN(nn.Module):
    def __init__(self, kind: str, c: int, stride: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(3, stride, 1) if kind == "max" else nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        self.bn = nn.BatchNorm2d(c, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.pool(x))


def ref_op(name: str, c: int, stride: int) -> nn.Module:
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else RefFactorizedReduce(c, c)
    if name.endswith("pool_3x3"):
        return RefPoolBN(name[:3], c, stride)
    k = int(name[-1])
    if name.startswith("sep_conv"):
        return nn.Sequential(RefDilConv(c, c, k, stride, k // 2, 1), RefDilConv(c, c, k, 1, k // 2, 1))
    return RefDilConv(c, c, k, stride, k - 1, 2)  # dil_conv_3x3: pad 2, dil_conv_5x5: pad 4


class RefCell(nn.Module):
    def __init__(self, genotype: Genotype, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.preprocess0 = RefFactorizedReduce(c_pp, c) if reduction_prev else RefReLUConvBN(c_pp, c)
        self.preprocess1 = RefReLUConvBN(c_p, c)
        pairs = genotype.reduce if reduction else genotype.normal
        self.concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self.indices = [i for _, i in pairs]
        self._ops = nn.ModuleList(ref_op(n, c, 2 if reduction and i < 2 else 1) for n, i in pairs)

    def forward(self, s0: Tensor, s1: Tensor) -> Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(len(self._ops) // 2):
            a, b = 2 * i, 2 * i + 1
            states.append(self._ops[a](states[self.indices[a]]) + self._ops[b](states[self.indices[b]]))
        return torch.cat([states[i] for i in self.concat], dim=1)


class RefNetworkImageNet(nn.Module):
    def __init__(self, c: int, num_classes: int, layers: int, genotype: Genotype) -> None:
        super().__init__()
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, c // 2, 3, 2, 1, bias=False),
            nn.BatchNorm2d(c // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c // 2, c, 3, 2, 1, bias=False),
            nn.BatchNorm2d(c),
        )
        self.stem1 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c))
        c_pp, c_p, c_cur, reduction_prev = c, c, c, True
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            c_cur *= 2 if reduction else 1
            self.cells.append(RefCell(genotype, c_pp, c_p, c_cur, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c_cur
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        s0 = self.stem0(x)
        s1 = self.stem1(s0)  # in place: s0 is rectified here, as in the release
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))


# ---- helpers ---------------------------------------------------------------------------------------

C, LAYERS, CLASSES = 8, 3, 5


def released_net(name: str = "dcp-nas-l") -> Network:
    entry = get_entry(name)
    policy = BinarizationPolicy.released(weight_quantizer=entry.weight_quantizer)
    return Network(
        entry.genotype,
        num_classes=CLASSES,
        channels=C,
        layers=LAYERS,
        stem="imagenet",
        family=entry.family,
        policy=policy,
    )


def randomize_(net: nn.Module) -> None:
    """Move BN statistics and affine parameters and PReLU slopes away from their initial values."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_(1.0, 0.2)
            m.bias.data.normal_(0.0, 0.2)
        elif isinstance(m, nn.PReLU):
            m.weight.data.uniform_(0.05, 0.5)


LEAF_TYPES = (nn.BatchNorm2d, nn.PReLU, nn.Conv2d, nn.Linear, RefMConv)


def copy_state(src: nn.Module, dst: nn.Module) -> None:
    """Copy src's state into dst, entry by entry in registration order (names differ, order and shapes
    must not); quantizer `m` <-> MConv `MFilters`. Checks every BatchNorm pair has the same eps."""
    s_items, d_items = list(src.state_dict().items()), list(dst.state_dict().items())
    assert len(s_items) == len(d_items)
    for (s_key, s_val), (d_key, d_val) in zip(s_items, d_items):
        s_leaf, d_leaf = s_key.rsplit(".", 1)[-1], d_key.rsplit(".", 1)[-1]
        assert (s_leaf, d_leaf) == ("m", "MFilters") or s_leaf == d_leaf, (s_key, d_key)
        assert s_val.shape == d_val.shape, (s_key, d_key)
        d_val.copy_(s_val)
    s_bns = [m for m in src.modules() if isinstance(m, nn.BatchNorm2d)]
    d_bns = [m for m in dst.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(s_bns) == len(d_bns) and all(a.eps == b.eps for a, b in zip(s_bns, d_bns))


# ---- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RELEASED)
def test_float64_forward_equals_the_release_structure(name: str) -> None:
    torch.manual_seed(0)
    net = released_net(name).double()
    randomize_(net)
    ref = RefNetworkImageNet(C, CLASSES, LAYERS, get_genotype(name)).double()
    with torch.no_grad():
        copy_state(net, ref)
        x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
        for train in (False, True):  # running statistics, then batch statistics
            net.train(train)
            ref.train(train)
            y, y_ref = net(x), ref(x)
            assert y.abs().max() > 1e-3
            assert (y - y_ref).abs().max() < 1e-10, (train, (y - y_ref).abs().max())


def test_every_bn_eps_of_a_dcp_network() -> None:
    net = released_net()
    expected_default = re.compile(r"^stem\.|\.preprocess[01]\.0$|\.pre$")  # stems; BN in front of a 1x1 conv
    seen = {1e-5: 0, 1e-3: 0}
    for name, m in net.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            eps = 1e-5 if expected_default.search(name) else 1e-3
            assert m.eps == eps, name
            seen[eps] += 1
    # 3 stem BNs + per cell 2 in front of its preprocess convs (+ the FactorizedReduce skip ops' `pre`)
    assert seen[1e-5] >= 3 + 2 * LAYERS and seen[1e-3] > seen[1e-5]
    darts = Network(
        get_genotype("dcp-nas-l"),
        num_classes=CLASSES,
        channels=C,
        layers=LAYERS,
        stem="imagenet",
        family="darts",
        policy=BinarizationPolicy.released(),
    )
    assert {m.eps for m in darts.modules() if isinstance(m, nn.BatchNorm2d)} == {1e-5}


@pytest.mark.parametrize("family, rectified", [("dcp", True), ("darts", False)])
def test_what_cell_zero_receives_from_the_imagenet_stem(family: str, rectified: bool) -> None:
    torch.manual_seed(0)
    net = Network(
        get_genotype("dcp-nas-l"),
        num_classes=CLASSES,
        channels=C,
        layers=LAYERS,
        stem="imagenet",
        family=family,
        policy=BinarizationPolicy.released(),
    ).eval()
    got: list[tuple[Tensor, ...]] = []
    net.cells[0].register_forward_pre_hook(lambda _m, args: got.append(tuple(a.clone() for a in args[:2])))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        net(x)
        stem = net.stem
        assert isinstance(stem, ImageNetStem) and stem.rectify_s0 == rectified
        raw = stem.stem0(x)
        s1 = stem.stem1(raw)
    ((s0_in, s1_in),) = got
    assert (raw < 0).any()  # so rectifying changes something
    assert torch.equal(s0_in, raw.relu() if rectified else raw)
    assert torch.equal(s1_in, s1) and torch.equal(s1, stem.stem1[2](stem.stem1[1](raw.relu())))


def test_released_recipe_preset_uses_the_learned_scale_binarizer() -> None:
    cfg = from_dict(RunConfig, load_yaml(get_preset("dcpnas_l_imagenet_train").path))
    policy = cfg.space.binary_policy()
    assert (policy.name, policy.weight_quantizer, cfg.space.family) == ("released", "learned_scale", "dcp")
    assert (cfg.train.net.channels, cfg.train.net.layers, cfg.train.net.stem) == (108, 10, "imagenet")
