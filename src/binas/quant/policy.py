"""Binarization policies: which conv roles inside a cell get binary weights and/or activations.

Spec A8: the released DCP-NAS code binarizes the weights of every cell conv but the activations only
of the 1x1 point-wise convs inside sep/dil convs (`released`); the book text binarizes weights and
activations of every conv (`strict`). Stems and the classifier are always real.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from binas.errors import ConfigError
from binas.quant.layers import QuantConv2d
from binas.quant.quantizers import STE_CLIP

ConvRole = Literal["preprocess", "reduce", "depthwise", "pointwise"]
CONV_ROLES: tuple[ConvRole, ...] = ("preprocess", "reduce", "depthwise", "pointwise")
PolicyName = Literal["real", "released", "strict"]


@dataclass(frozen=True)
class ConvSpec:
    """How to build one conv: names of its input and weight quantizers (None = real)."""

    input_quantizer: str | None = None
    weight_quantizer: str | None = None
    ste_clip: float = STE_CLIP

    def conv(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
    ) -> QuantConv2d:
        return QuantConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias=False,
            input_quantizer=self.input_quantizer,
            weight_quantizer=self.weight_quantizer,
            quantizer_args={"clip": self.ste_clip},
        )

    @property
    def binary_activations(self) -> bool:
        return self.input_quantizer is not None


@dataclass(frozen=True)
class BinarizationPolicy:
    """Maps each conv role to a `ConvSpec`.

    Attributes:
        weights: roles whose weights are binarized.
        activations: roles whose input activations are binarized.
        act_quantizer: activation quantizer name (`approx_sign` as in the release, or `ste_sign`).
        weight_quantizer: weight quantizer name (`mean_abs`, or `learned_scale` as in the release).
        name: the policy's name (`real`, `released`, `strict`, `<name>-step1`).
        ste_clip: the clip of the straight-through estimators (`ste_sign` activations, `mean_abs` weights:
            gradient 1 where |x| <= clip, DCP-NAS Eq. 4.35); ApproxSign and the learned scale have none.
    """

    weights: frozenset[str] = frozenset()
    activations: frozenset[str] = frozenset()
    act_quantizer: str = "approx_sign"
    weight_quantizer: str = "mean_abs"
    name: str = "real"
    ste_clip: float = STE_CLIP

    @classmethod
    def real(cls) -> BinarizationPolicy:
        return cls(name="real")

    @classmethod
    def released(cls, **kw: Any) -> BinarizationPolicy:
        return cls(frozenset(CONV_ROLES), frozenset({"pointwise"}), name="released", **kw)

    @classmethod
    def strict(cls, **kw: Any) -> BinarizationPolicy:
        return cls(frozenset(CONV_ROLES), frozenset(CONV_ROLES), name="strict", **kw)

    @classmethod
    def preset(cls, name: str, **kw: Any) -> BinarizationPolicy:
        """Build a policy by name: `real`, `released` or `strict`."""
        builders = {
            "real": lambda: cls.real(),
            "released": lambda: cls.released(**kw),
            "strict": lambda: cls.strict(**kw),
        }
        if name not in builders:
            raise ConfigError(f"unknown binarization policy '{name}'; choose one of: real, released, strict")
        return builders[name]()

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain data (what config, model and packed files store)."""
        return {
            "name": self.name,
            "weights": sorted(self.weights),
            "activations": sorted(self.activations),
            "act_quantizer": self.act_quantizer,
            "weight_quantizer": self.weight_quantizer,
            "ste_clip": self.ste_clip,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BinarizationPolicy:
        """The inverse of `to_dict` (files written before `ste_clip` existed get the default clip)."""
        return cls(
            frozenset(data["weights"]),
            frozenset(data["activations"]),
            data["act_quantizer"],
            data["weight_quantizer"],
            data["name"],
            data.get("ste_clip", STE_CLIP),
        )

    def spec(self, role: str) -> ConvSpec:
        return ConvSpec(
            self.act_quantizer if role in self.activations else None,
            self.weight_quantizer if role in self.weights else None,
            self.ste_clip,
        )

    @property
    def is_real(self) -> bool:
        return not self.weights and not self.activations

    def activations_only(self) -> BinarizationPolicy:
        """Step 1 of two-step training: the same binary activations, real weights (spec §3.2)."""
        return replace(self, weights=frozenset(), name=f"{self.name}-step1")
