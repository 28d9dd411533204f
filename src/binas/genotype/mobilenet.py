"""`MobileGenotype`: a derived network of the mobile (MobileNetV2-style) space, as validated data.

The DDPNAS gene format (spec ddpnas §4.3, e.g. `[(7, 6), (7, 3), (5, 6), ...]`): one entry per
searchable block, `(kernel, expand)` of its MBConv or `"zero"` for a skipped block. JSON form:
`{"space": "mobilenet", "blocks": [[7, 6], [7, 3], "zero", ...]}`; the `space` key tells it apart from a
DARTS `Genotype` file. It offers the duck-typed interface the search engine uses for a genotype
(`to_dict`, `save`, `archid`, `__str__`), like `binas.genotype.Genotype`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from binas.errors import GenotypeError
from binas.genotype.genotype import ARCHID_HEX_DIGITS
from binas.genotype.jsonfile import JsonFile
from binas.run_files import GENOTYPE_FILE
from binas.space.mobilenet import ZERO, Candidate, MobileNetConfig, block_specs, candidate_name

#: Value of the `space` key in the JSON form.
SPACE_NAME = "mobilenet"
#: File name of a genotype inside a run directory (as for DARTS genotypes).


def _as_candidate(i: int, value: object) -> Candidate:
    if value == ZERO:
        return ZERO
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        kernel, expand = value
        if kernel < 1 or kernel % 2 == 0 or expand < 1:
            raise GenotypeError(f"mobile genotype block {i}: need an odd kernel and expand >= 1, got {list(value)}")
        return (kernel, expand)
    raise GenotypeError(f'mobile genotype block {i} must be [kernel, expand] or "zero", got {value!r}')


@dataclass(frozen=True)
class MobileGenotype(JsonFile):
    """One candidate per searchable block: `(kernel, expand)` or `"zero"` (skip the block)."""

    kind = "mobile genotype"
    default_file = GENOTYPE_FILE
    blocks: tuple[Candidate, ...]

    def __post_init__(self) -> None:
        value = self.blocks
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise GenotypeError(f"mobile genotype 'blocks' must be a list, got {value!r}")
        blocks = tuple(_as_candidate(i, v) for i, v in enumerate(value))
        if not blocks:
            raise GenotypeError("mobile genotype has no blocks")
        object.__setattr__(self, "blocks", blocks)

    @classmethod
    def from_indices(cls, candidates: Sequence[Sequence[Candidate]], indices: Sequence[int]) -> MobileGenotype:
        """The genotype that takes candidate `indices[i]` of `candidates[i]` on every block."""
        return cls(tuple(cands[int(k)] for cands, k in zip(candidates, indices)))

    def check_against(self, cfg: MobileNetConfig) -> None:
        """Raise `GenotypeError` unless the genotype fits the space `cfg` (block count, skippable blocks)."""
        specs = block_specs(cfg)
        if len(specs) != len(self.blocks):
            raise GenotypeError(
                f"mobile genotype has {len(self.blocks)} blocks but the space has {len(specs)} "
                f"(depth {cfg.depth}, {len(cfg.stage_strides)} stages)"
            )
        for i, (spec, block) in enumerate(zip(specs, self.blocks)):
            if block == ZERO and not spec.skippable:
                raise GenotypeError(
                    f"mobile genotype block {i} is 'zero' but that block cannot be skipped "
                    f"(stride {spec.stride}, {spec.c_in} -> {spec.c_out} channels)"
                )

    @property
    def num_skipped(self) -> int:
        return sum(1 for b in self.blocks if b == ZERO)

    @property
    def archid(self) -> str:
        """A stable short id: the leading hex digits of sha256 over the canonical JSON."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:ARCHID_HEX_DIGITS]

    def __str__(self) -> str:
        """One line, e.g. `mobilenet: 7x7_MBConv6 3x3_MBConv3 zero ...`."""
        return "mobilenet: " + " ".join(candidate_name(b) for b in self.blocks)

    # ----------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {"space": SPACE_NAME, "blocks": [b if b == ZERO else list(b) for b in self.blocks]}

    @classmethod
    def from_dict(cls, data: object) -> MobileGenotype:
        if not isinstance(data, Mapping) or data.get("space") != SPACE_NAME or "blocks" not in data:
            raise GenotypeError(
                f'a mobile genotype must be a JSON object {{"space": "{SPACE_NAME}", '
                f'"blocks": [...]}}, got {str(data)[:80]!r}'
            )
        extra = sorted(str(k) for k in data if k not in ("space", "blocks"))
        if extra:
            raise GenotypeError(f"mobile genotype has unknown key(s) {extra}")
        return cls(data["blocks"])

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text; with `indent`, one key per line and the block list on one line (readable genes)."""
        if indent is None:
            return json.dumps(self.to_dict())
        pad = " " * indent
        data = self.to_dict()
        return f'{{\n{pad}"space": {json.dumps(data["space"])},\n{pad}"blocks": {json.dumps(data["blocks"])}\n}}'

    @classmethod
    def parse(cls, spec: object) -> MobileGenotype:
        """A `MobileGenotype`, its dict form, a list of blocks, JSON text, a JSON file or a run directory."""
        if isinstance(spec, MobileGenotype):
            return spec
        if isinstance(spec, Mapping):
            return cls.from_dict(spec)
        if isinstance(spec, (list, tuple)):
            return cls(tuple(spec))
        text = str(spec).strip()
        if text.startswith("{"):
            return cls.from_json(text)
        return cls.load(text)


def is_mobile_genotype_dict(data: object) -> bool:
    """True for the JSON form of a `MobileGenotype` (used to tell genotype files apart)."""
    return isinstance(data, Mapping) and data.get("space") == SPACE_NAME
