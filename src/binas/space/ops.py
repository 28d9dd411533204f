"""The candidate operations, built real or binary from one code path.

Two op families share one op table (`OPS`):

* `darts`: DARTS's ReLU-Conv-BN ops (Liu et al., 2019, `operations.py`), so a real DARTS network has
  exactly DARTS's parameter count. When a conv's input is binarized the ReLU in front of it is dropped:
  sign(ReLU(x)) would be constant, and the sign is the non-linearity of a binary conv. When the
  point-wise conv's input is binarized, a BatchNorm sits between the depth-wise and the point-wise conv
  (see `OpFamily.conv_block`).
* `dcp`: the op structure of the released DCP-NAS-L code (spec §2.2): BN first, PReLU, an internal
  residual in each dil/sep block, pooling followed by BN, and BN-Conv-BN-PReLU preprocessing, with the
  release's BatchNorm epsilons: 1e-3 on every BN of a sep/dil conv, in `PoolBN` and after the preprocess
  and FactorizedReduce convs; PyTorch's 1e-5 on the BN in front of a preprocess or FactorizedReduce conv.

Which convs are binary is decided by a `BinarizationPolicy` through the conv roles
`depthwise`/`pointwise` (inside sep/dil convs), `reduce` (FactorizedReduce) and `preprocess`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from binas.quant.policy import BinarizationPolicy, ConvSpec
from binas.registry import Registry

#: BatchNorm epsilon of the released DCP-NAS `PoolBN` (spec §2.2).
DCP_POOL_BN_EPS = 1e-3
#: BatchNorm epsilon the DCP-NAS release gives DilConv's bn0/bn1/bn2, the BN after ReLUConvBN's conv and
#: FactorizedReduce's `bn` (YanjingLi0202/DCP-NAS, models/darts_ops_step2_sc_out.py). The BNs in front of
#: the ReLUConvBN and FactorizedReduce convs keep PyTorch's default 1e-5 there.
DCP_BN_EPS = 1e-3


class Zero(nn.Module):
    """The `none` op: zeros with the output shape of a strided op."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Residual(nn.Module):
    """`body(x) + x` (the internal Bi-Real-style shortcut of the released DCP-NAS ops)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + x


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1x1 stride-2 convs on offset grids, concatenated.

    The convs are built with stride 1 and applied to the subsampled grids `x[..., ::2, ::2]` (the same map):
    oneDNN's AVX2 1x1 stride-2 weight-gradient kernel (torch 2.13 CPU, channels_last, C_in not a multiple
    of 8) writes past its buffer and corrupts the heap (docs/architecture.md, "Known kernel faults").
    """

    def __init__(self, pre: nn.Module, conv_a: nn.Module, conv_b: nn.Module, post: nn.Module) -> None:
        super().__init__()
        self.pre, self.conv_a, self.conv_b, self.post = pre, conv_a, conv_b, post

    def forward(self, x: Tensor) -> Tensor:
        x = self.pre(x)
        even, odd = x[:, :, ::2, ::2], x[:, :, 1::2, 1::2]
        # An odd side gives the offset grid one row/column less: pad it with zeros (at the end) to match.
        odd = nn.functional.pad(odd, (0, even.shape[-1] - odd.shape[-1], 0, even.shape[-2] - odd.shape[-2]))
        return self.post(torch.cat([self.conv_a(even), self.conv_b(odd)], dim=1))


def _relu_unless(spec: ConvSpec) -> list[nn.Module]:
    return [] if spec.binary_activations else [nn.ReLU(inplace=False)]


class OpFamily:
    """Builds the conv blocks of one family; the op table combines them into the 8 ops."""

    name = "darts"
    #: Whether the first cell of an ImageNet-stem network gets ReLU(stem0(x)) as its s0 (see `stems`).
    #: DARTS's own code has the same in-place ReLU, but there FactorizedReduce starts with a ReLU anyway.
    rectified_imagenet_s0 = False

    def conv_block(
        self,
        C_in: int,
        C_out: int,
        k: int,
        stride: int,
        pad: int,
        dil: int,
        affine: bool,
        policy: BinarizationPolicy,
    ) -> nn.Module:
        """Depth-wise k x k (dilated) conv then point-wise 1x1 conv: half a SepConv, all of a DilConv.

        Real activations into the point-wise conv: DARTS's ReLU-dw-pw-BN, unchanged. Binary ones: a BN
        between the two convs, so the sign sees a normalised map rather than the raw depth-wise output,
        as in the book's binarized separable conv (Fig. 4.8: bin-dw -> BN -> bin-1x1 -> BN); the DCP-NAS
        release has BN -> PReLU there (the `dcp` family).
        """
        dw, pw = policy.spec("depthwise"), policy.spec("pointwise")
        between = [nn.BatchNorm2d(C_in, affine=affine)] if pw.binary_activations else []
        return nn.Sequential(
            *_relu_unless(dw),
            dw.conv(C_in, C_in, k, stride, pad, dil, groups=C_in),
            *between,
            pw.conv(C_in, C_out, 1),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def pool(self, kind: str, C: int, stride: int, affine: bool, in_search: bool) -> nn.Module:
        pool: nn.Module = (
            nn.MaxPool2d(3, stride, 1) if kind == "max" else nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        )
        # DARTS's search MixedOp follows pools with a non-affine BN; its final network does not.
        return nn.Sequential(pool, nn.BatchNorm2d(C, affine=False)) if in_search else pool

    def factorized_reduce(self, C_in: int, C_out: int, affine: bool, policy: BinarizationPolicy) -> nn.Module:
        spec = policy.spec("reduce")
        return FactorizedReduce(
            nn.Sequential(*_relu_unless(spec)),
            spec.conv(C_in, C_out // 2, 1, 1),
            spec.conv(C_in, C_out - C_out // 2, 1, 1),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def preprocess(self, C_in: int, C_out: int, affine: bool, policy: BinarizationPolicy) -> nn.Module:
        """1x1 conv that maps a previous cell's output to C channels (DARTS `ReLUConvBN`)."""
        spec = policy.spec("preprocess")
        return nn.Sequential(*_relu_unless(spec), spec.conv(C_in, C_out, 1), nn.BatchNorm2d(C_out, affine=affine))

    def dil_conv(
        self, C_in: int, C_out: int, k: int, stride: int, pad: int, dil: int, affine: bool, policy: BinarizationPolicy
    ) -> nn.Module:
        return self.conv_block(C_in, C_out, k, stride, pad, dil, affine, policy)

    def sep_conv(
        self, C_in: int, C_out: int, k: int, stride: int, pad: int, affine: bool, policy: BinarizationPolicy
    ) -> nn.Module:
        return nn.Sequential(
            self.conv_block(C_in, C_in, k, stride, pad, 1, affine, policy),
            self.conv_block(C_in, C_out, k, 1, pad, 1, affine, policy),
        )


class DcpFamily(OpFamily):
    """The released DCP-NAS-L op structure (spec §2.2, `darts_ops_step2_sc_out.py`)."""

    name = "dcp"
    #: The release's stem1 starts with an in-place ReLU that also rectifies s0 (models/darts_cnn_m.py).
    rectified_imagenet_s0 = True

    def conv_block(
        self,
        C_in: int,
        C_out: int,
        k: int,
        stride: int,
        pad: int,
        dil: int,
        affine: bool,
        policy: BinarizationPolicy,
    ) -> nn.Module:
        dw, pw = policy.spec("depthwise"), policy.spec("pointwise")
        # The release's DilConv: bn0, conv1, bn1, relu0, conv2, bn2 (all three BNs eps 1e-3), relu1.
        body: nn.Module = nn.Sequential(
            nn.BatchNorm2d(C_in, eps=DCP_BN_EPS, affine=affine),
            dw.conv(C_in, C_in, k, stride, pad, dil, groups=C_in),
            nn.BatchNorm2d(C_in, eps=DCP_BN_EPS, affine=affine),
            nn.PReLU(C_in),
            pw.conv(C_in, C_out, 1),
            nn.BatchNorm2d(C_out, eps=DCP_BN_EPS, affine=affine),
        )
        if stride == 1 and C_in == C_out:
            body = Residual(body)
        return nn.Sequential(body, nn.PReLU(C_out))

    def pool(self, kind: str, C: int, stride: int, affine: bool, in_search: bool) -> nn.Module:
        pool: nn.Module = (
            nn.MaxPool2d(3, stride, 1) if kind == "max" else nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        )
        return nn.Sequential(pool, nn.BatchNorm2d(C, eps=DCP_POOL_BN_EPS, affine=affine))

    def factorized_reduce(self, C_in: int, C_out: int, affine: bool, policy: BinarizationPolicy) -> nn.Module:
        spec = policy.spec("reduce")
        return FactorizedReduce(
            nn.BatchNorm2d(C_in, affine=affine),
            spec.conv(C_in, C_out // 2, 1, 1),
            spec.conv(C_in, C_out - C_out // 2, 1, 1),
            nn.Sequential(nn.BatchNorm2d(C_out, eps=DCP_BN_EPS, affine=affine), nn.PReLU(C_out)),
        )

    def preprocess(self, C_in: int, C_out: int, affine: bool, policy: BinarizationPolicy) -> nn.Module:
        spec = policy.spec("preprocess")
        return nn.Sequential(
            nn.BatchNorm2d(C_in, affine=affine),
            spec.conv(C_in, C_out, 1),
            nn.BatchNorm2d(C_out, eps=DCP_BN_EPS, affine=affine),
            nn.PReLU(C_out),
        )


OP_FAMILIES: Registry[OpFamily] = Registry("op family")
OP_FAMILIES.register("darts", OpFamily())
OP_FAMILIES.register("dcp", DcpFamily())

OpFactory = Callable[[OpFamily, int, int, bool, BinarizationPolicy, bool], nn.Module]

#: The op table: name -> factory(family, C, stride, affine, policy, in_search). DARTS names, verbatim.
OPS: Registry[OpFactory] = Registry("op")
OPS.register("none", lambda f, C, s, a, p, search: Zero(s))
OPS.register("max_pool_3x3", lambda f, C, s, a, p, search: f.pool("max", C, s, a, search))
OPS.register("avg_pool_3x3", lambda f, C, s, a, p, search: f.pool("avg", C, s, a, search))
OPS.register("skip_connect", lambda f, C, s, a, p, search: nn.Identity() if s == 1 else f.factorized_reduce(C, C, a, p))
OPS.register("sep_conv_3x3", lambda f, C, s, a, p, search: f.sep_conv(C, C, 3, s, 1, a, p))
OPS.register("sep_conv_5x5", lambda f, C, s, a, p, search: f.sep_conv(C, C, 5, s, 2, a, p))
OPS.register("dil_conv_3x3", lambda f, C, s, a, p, search: f.dil_conv(C, C, 3, s, 2, 2, a, p))
OPS.register("dil_conv_5x5", lambda f, C, s, a, p, search: f.dil_conv(C, C, 5, s, 4, 2, a, p))


def build_op(
    name: str,
    C: int,
    stride: int,
    *,
    family: str = "darts",
    policy: BinarizationPolicy | None = None,
    affine: bool = True,
    in_search: bool = False,
) -> nn.Module:
    """Build candidate op `name` on C channels; `in_search` adds DARTS's search-time pool BN."""
    return OPS.get(name)(OP_FAMILIES.get(family), C, stride, affine, policy or BinarizationPolicy.real(), in_search)
