"""The MobileNetV2-style (ProxylessNAS-like) search space of DDPNAS, real or 1-bit.

Layout (spec ddpnas §1.1, after XNAS@92720aa `model/proxyless_cnn.py`): a 3x3 stem conv, one fixed
3x3 MBConv1 block, then stages of MBConv blocks (`depth` blocks per stage, 1 in the last stage), a
1x1 feature-mix conv, global pooling and a linear classifier. Stage widths are ProxylessNAS's
`[32, 16, 24, 40, 80, 96, 192, 320, 1280] x width_mult` (rounded to multiples of 8).

Every block after the first is a decision point with K = len(kernels) * len(expands) + 1 candidates:
the MBConv ops `{3x3, 5x5, 7x7} x {expand 3, 6}` in kernel-major order, plus `zero` (skip the block,
only the identity shortcut remains) on blocks that have a shortcut (stride 1, same width). Blocks
without a shortcut cannot be skipped; there the last candidate is a 3x3 MBConv1, as in the reference.

Binarization (a `BinarizationPolicy`, roles `pointwise` / `depthwise`): the expand and project 1x1
convs are `pointwise`, the k x k depth-wise conv is `depthwise`. So `released` = binary weights in every
block conv and binary activations into the 1x1 convs; `strict` = every block conv 1-bit x 1-bit. The
stem, the feature-mix conv and the classifier stay real (the first and last layers of a BNN, as for
the DARTS space). A 1-bit MBConv gets Bi-Real-style real shortcuts around its convs
(`binas.space.mobilenet_ops`), without which it does not train.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from torch import Tensor, nn

from binas.errors import ShapeError
from binas.quant.policy import BinarizationPolicy
from binas.space.mobilenet_ops import MBConv

#: ProxylessNAS stage widths: stem, first block, 6 searchable stages, feature mix (spec ddpnas §1.1).
PROXYLESS_WIDTHS: tuple[int, ...] = (32, 16, 24, 40, 80, 96, 192, 320, 1280)
#: Strides of the 6 searchable stages (XNAS@92720aa `proxyless_cnn.py`, `stride_stages`).
PROXYLESS_STAGE_STRIDES: tuple[int, ...] = (2, 2, 2, 1, 2, 1)
#: Candidate kernel sizes and expansion ratios (spec ddpnas §1.1: {3x3, 5x5, 7x7} x {MBConv3, MBConv6}).
KERNELS: tuple[int, ...] = (3, 5, 7)
EXPANDS: tuple[int, ...] = (3, 6)
#: Blocks per stage of the reference (spec ddpnas §4.3: `depth` 4); the last stage always has one block.
PROXYLESS_DEPTH = 4
#: The op of a non-skippable block that takes the place of `zero` (reference: `3x3_MBConv1`).
NO_SKIP_OP: tuple[int, int] = (3, 1)
#: Kernel and expansion of the fixed first block (reference: 3x3 MBConv1).
FIRST_BLOCK_OP: tuple[int, int] = (3, 1)
#: Channel rounding of MobileNetV2 / ProxylessNAS `make_divisible(v, 8)`: never more than 10 % down.
WIDTH_DIVISOR = 8
MIN_ROUND_RATIO = 0.9
#: Name of the skip candidate in genotypes (DDPNAS gene format: `[(7, 6), (7, 3), 'zero', ...]`).
ZERO = "zero"

#: One candidate: (kernel, expand) or "zero".
Candidate = tuple[int, int] | str


def make_divisible(value: float, divisor: int = WIDTH_DIVISOR) -> int:
    """Round a width to a multiple of `divisor`, at least `divisor`, never below 90 % of `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < MIN_ROUND_RATIO * value else rounded


def candidate_name(candidate: Candidate) -> str:
    """`'5x5_MBConv6'` or `'zero'` (the reference's op names)."""
    if candidate == ZERO:
        return ZERO
    kernel, expand = cast("tuple[int, int]", candidate)  # not ZERO, the only str candidate
    return f"{kernel}x{kernel}_MBConv{expand}"


@dataclass(frozen=True)
class MobileNetConfig:
    """Shape of the mobile search space; digits-sized defaults (ImageNet: `depth=4, stem_stride=2`, the
    reference's defaults). On 16x16 digits the stem keeps full resolution (stride 1), and two blocks per
    stage give 11 searchable blocks, 5 of them skippable. Full width: on digits a fixed path at width 1.0
    learned faster than at 0.5 (measured, 6 epochs with the default augmentation).

    Attributes:
        width_mult: multiplier of the ProxylessNAS stage widths.
        depth: blocks per searchable stage except the last one (which has 1).
        stem_stride: stride of the 3x3 stem conv (2 on ImageNet, 1 keeps small images large enough).
        base_widths: stem, first block, one width per stage, feature mix (before `width_mult`).
        stage_strides: stride of the first block of each searchable stage.
        kernels, expands: the MBConv candidates of every block.
    """

    width_mult: float = 1.0
    depth: int = 2
    stem_stride: int = 1
    base_widths: tuple[int, ...] = PROXYLESS_WIDTHS
    stage_strides: tuple[int, ...] = PROXYLESS_STAGE_STRIDES
    kernels: tuple[int, ...] = KERNELS
    expands: tuple[int, ...] = EXPANDS

    def __post_init__(self) -> None:
        if self.width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {self.width_mult}")
        if self.depth < 1:
            raise ValueError(f"depth must be at least 1, got {self.depth}")
        if self.stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {self.stem_stride}")
        if len(self.base_widths) != len(self.stage_strides) + 3:
            raise ValueError(
                f"base_widths needs {len(self.stage_strides) + 3} entries (stem, first block, "
                f"{len(self.stage_strides)} stages, feature mix), got {len(self.base_widths)}"
            )
        if any(s not in (1, 2) for s in self.stage_strides):
            raise ValueError(f"stage_strides must be 1 or 2, got {list(self.stage_strides)}")
        if not self.kernels or any(k < 1 or k % 2 == 0 for k in self.kernels):
            raise ValueError(f"kernels must be odd positive sizes, got {list(self.kernels)}")
        if not self.expands or any(e < 1 for e in self.expands):
            raise ValueError(f"expands must be positive ratios, got {list(self.expands)}")

    def width(self, index: int) -> int:
        return make_divisible(self.base_widths[index] * self.width_mult)


@dataclass(frozen=True)
class BlockSpec:
    """One searchable block: its channels, stride and whether it can be skipped (has a shortcut)."""

    c_in: int
    c_out: int
    stride: int

    @property
    def skippable(self) -> bool:
        return self.stride == 1 and self.c_in == self.c_out


def block_specs(cfg: MobileNetConfig) -> tuple[BlockSpec, ...]:
    """The searchable blocks, in order (the fixed first block is not among them)."""
    specs, c = [], cfg.width(1)
    stages = len(cfg.stage_strides)
    for s, stride in enumerate(cfg.stage_strides):
        width = cfg.width(2 + s)
        for i in range(cfg.depth if s < stages - 1 else 1):
            specs.append(BlockSpec(c, width, stride if i == 0 else 1))
            c = width
    return tuple(specs)


def block_candidates(cfg: MobileNetConfig, spec: BlockSpec) -> tuple[Candidate, ...]:
    """The K candidates of a block: MBConv (kernel, expand) kernel-major, then `zero` or 3x3 MBConv1."""
    ops: list[Candidate] = [(k, e) for k in cfg.kernels for e in cfg.expands]
    return (*ops, ZERO if spec.skippable else NO_SKIP_OP)


def num_candidates(cfg: MobileNetConfig) -> int:
    return len(cfg.kernels) * len(cfg.expands) + 1


def build_candidate(spec: BlockSpec, candidate: Candidate, policy: BinarizationPolicy) -> nn.Module | None:
    """The body of one candidate on block `spec`; None for `zero` (nothing runs, the shortcut remains)."""
    if candidate == ZERO:
        return None
    kernel, expand = cast("tuple[int, int]", candidate)  # not ZERO, the only str candidate
    return MBConv(spec.c_in, spec.c_out, kernel, expand, spec.stride, policy)


class ChoiceBlock(nn.Module):
    """A searchable block: every candidate body, run one at a time (`forward(x, index)`)."""

    def __init__(self, spec: BlockSpec, candidates: Sequence[Candidate], policy: BinarizationPolicy) -> None:
        super().__init__()
        self.spec = spec
        self.candidates = tuple(candidates)
        self.ops = nn.ModuleList(build_candidate(spec, c, policy) or nn.Identity() for c in candidates)

    def forward(self, x: Tensor, index: int) -> Tensor:
        if self.candidates[index] == ZERO:
            return x
        y = self.ops[index](x)
        return y + x if self.spec.skippable else y


class FixedBlock(nn.Module):
    """A chosen block of a derived network: MBConv body plus identity shortcut when it has one."""

    def __init__(self, spec: BlockSpec, candidate: Candidate, policy: BinarizationPolicy) -> None:
        super().__init__()
        self.spec, self.candidate = spec, candidate
        self.body = build_candidate(spec, candidate, policy)

    def forward(self, x: Tensor) -> Tensor:
        if self.body is None:
            return x
        y = self.body(x)
        return y + x if self.spec.skippable else y


class MobileBackbone(nn.Module):
    """Stem, fixed first block and head shared by the supernet and the derived networks (always the
    same modules, so per-block costs measured on one add up to the other's totals)."""

    def __init__(self, cfg: MobileNetConfig, *, num_classes: int, in_channels: int, policy: BinarizationPolicy) -> None:
        super().__init__()
        self.cfg, self.policy, self.in_channels = cfg, policy, in_channels
        self.specs = block_specs(cfg)
        c0, c1, last = cfg.width(0), cfg.width(1), cfg.width(len(cfg.base_widths) - 1)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c0, 3, cfg.stem_stride, 1, bias=False), nn.BatchNorm2d(c0), nn.ReLU6(inplace=False)
        )
        self.first_block = FixedBlock(BlockSpec(c0, c1, 1), FIRST_BLOCK_OP, policy)
        c_final = self.specs[-1].c_out
        self.head = nn.Sequential(
            nn.Conv2d(c_final, last, 1, bias=False),
            nn.BatchNorm2d(last),
            nn.ReLU6(inplace=False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(last, num_classes),
        )

    @property
    def num_blocks(self) -> int:
        return len(self.specs)

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"expected input of shape (batch, {self.in_channels}, H, W), got {tuple(x.shape)}")


class MobileSupernet(MobileBackbone):
    """The weight-sharing supernet: `forward(x, sample)` runs one candidate per block (single path)."""

    def __init__(
        self, cfg: MobileNetConfig, *, num_classes: int, in_channels: int = 3, policy: BinarizationPolicy | None = None
    ) -> None:
        policy = policy or BinarizationPolicy.real()
        super().__init__(cfg, num_classes=num_classes, in_channels=in_channels, policy=policy)
        self.blocks = nn.ModuleList(ChoiceBlock(s, block_candidates(cfg, s), policy) for s in self.specs)

    @property
    def num_ops(self) -> int:
        return num_candidates(self.cfg)

    def candidates(self) -> list[tuple[Candidate, ...]]:
        """The candidate list of every searchable block (columns of theta)."""
        return [cast(ChoiceBlock, b).candidates for b in self.blocks]

    def forward(self, x: Tensor, sample: Tensor | Sequence[int]) -> Tensor:
        """Logits of the path that takes candidate `sample[i]` on block i (an (E,) index tensor)."""
        self._check(x)
        indices = sample.tolist() if isinstance(sample, Tensor) else list(sample)
        if len(indices) != self.num_blocks:
            raise ShapeError(f"sample must have {self.num_blocks} op indices, got {len(indices)}")
        x = self.first_block(self.stem(x))
        for block, index in zip(self.blocks, indices):
            x = block(x, int(index))
        return self.head(x)
