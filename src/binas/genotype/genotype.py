"""The `Genotype`: a derived (discrete) DARTS cell pair as immutable, validated data.

The layout is DARTS's (Liu et al., 2019, `cnn/genotypes.py`): each cell is a flat sequence of
`(op_name, input_node)` pairs, two per intermediate node, so pairs `2i` and `2i+1` feed node `i + 2`.
Nodes 0 and 1 are the cell inputs (c_{k-2}, c_{k-1}); `*_concat` lists the nodes concatenated into
the cell output. Genotypes travel as JSON (`to_json`/`from_json`), never as Python code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from binas.errors import GenotypeError
from binas.genotype.darts_repr import read_darts_repr
from binas.genotype.jsonfile import JsonFile
from binas.space.primitives import CELL_KINDS, NUM_INPUT_NODES, PRIMITIVES

#: Incoming edges kept per intermediate node (DARTS, Liu et al. 2019, §2.4: "retain the top-k
#: strongest operations ... k = 2 for convolutional cells").
PAIRS_PER_NODE: Final = 2
#: The two cell types of the DARTS macro network.
#: Keys of the JSON form, in the order they are written.
FIELDS: tuple[str, ...] = ("normal", "normal_concat", "reduce", "reduce_concat")
#: Hex digits of the sha256 kept in `Genotype.archid` (48 bits: collisions are not a concern here).
ARCHID_HEX_DIGITS = 12

CellKind = Literal["normal", "reduce"]
Pairs = tuple[tuple[str, int], ...]


def _is_int(value: object) -> bool:
    """True for real ints; bools are ints to Python but never valid indices in a genotype file."""
    return isinstance(value, int) and not isinstance(value, bool)


def _as_pairs(name: str, value: object) -> Pairs:
    """Normalise a sequence of (op, input) pairs to a tuple of tuples, checking element types."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise GenotypeError(f"genotype '{name}' must be a list of [op, input_node] pairs, got {value!r}")
    pairs = []
    for i, pair in enumerate(value):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise GenotypeError(f"genotype '{name}' pair {i} must be [op, input_node], got {pair!r}")
        op, node = pair
        if not isinstance(op, str) or not _is_int(node):
            raise GenotypeError(f"genotype '{name}' pair {i} must be [op name (str), input node (int)], got {pair!r}")
        pairs.append((op, node))
    return tuple(pairs)


def _as_concat(name: str, value: object) -> tuple[int, ...]:
    """Normalise a concat list (list, tuple or `range`) to a tuple of ints."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise GenotypeError(f"genotype '{name}' must be a list of node indices, got {value!r}")
    items = tuple(value)
    if not all(_is_int(v) for v in items):
        raise GenotypeError(f"genotype '{name}' must hold only integer node indices, got {list(items)!r}")
    return items


@dataclass(frozen=True)
class Genotype(JsonFile):
    """A normal and a reduction cell, each as (op, input_node) pairs plus the concatenated nodes.

    Lists (and `range` for the concat fields) are accepted and stored as tuples, so a genotype is
    hashable and compares by value. Construction validates; an invalid cell raises `GenotypeError`.
    """

    normal: Pairs
    normal_concat: tuple[int, ...]
    reduce: Pairs
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        for kind in CELL_KINDS:
            object.__setattr__(self, kind, _as_pairs(kind, getattr(self, kind)))
            concat = f"{kind}_concat"
            object.__setattr__(self, concat, _as_concat(concat, getattr(self, concat)))
        self.validate()

    # ----------------------------------------------------------------------------- validation
    def validate(self) -> None:
        """Check op names, pair counts, input indices and concat indices; raise `GenotypeError`."""
        steps = {kind: self._steps_of(kind) for kind in CELL_KINDS}
        if steps["normal"] != steps["reduce"]:
            raise GenotypeError(
                f"genotype normal cell has {steps['normal']} nodes but reduce cell has {steps['reduce']}; "
                "both cells must have the same number of intermediate nodes"
            )
        for kind in CELL_KINDS:
            for i, (op, node) in enumerate(self.cell(kind)):
                if op not in PRIMITIVES:
                    raise GenotypeError(
                        f"genotype '{kind}' pair {i}: unknown op '{op}'; known ops: {', '.join(PRIMITIVES)}"
                    )
                target = NUM_INPUT_NODES + i // PAIRS_PER_NODE
                if not 0 <= node < target:
                    raise GenotypeError(
                        f"genotype '{kind}' pair {i}: node {target} cannot take input from node {node} "
                        f"(valid inputs: 0..{target - 1})"
                    )
            concat = self.concat(kind)
            num_nodes = NUM_INPUT_NODES + steps[kind]
            if not concat:
                raise GenotypeError(f"genotype '{kind}_concat' is empty")
            if len(set(concat)) != len(concat):
                raise GenotypeError(f"genotype '{kind}_concat' repeats a node: {list(concat)}")
            bad = [c for c in concat if not 0 <= c < num_nodes]
            if bad:
                raise GenotypeError(
                    f"genotype '{kind}_concat' has node(s) {bad} outside the cell's nodes 0..{num_nodes - 1}"
                )

    def _steps_of(self, kind: str) -> int:
        pairs = self.cell(kind)
        if not pairs or len(pairs) % PAIRS_PER_NODE:
            raise GenotypeError(
                f"genotype '{kind}' has {len(pairs)} pairs; need a positive multiple of {PAIRS_PER_NODE} "
                f"({PAIRS_PER_NODE} per intermediate node)"
            )
        return len(pairs) // PAIRS_PER_NODE

    # ----------------------------------------------------------------------------- accessors
    @property
    def steps(self) -> int:
        """Number of intermediate nodes per cell (4 in the DARTS space)."""
        return len(self.normal) // PAIRS_PER_NODE

    def cell(self, kind: str) -> Pairs:
        """The (op, input_node) pairs of the `"normal"` or `"reduce"` cell."""
        if kind not in CELL_KINDS:
            raise GenotypeError(f"unknown cell kind '{kind}'; choose one of: {', '.join(CELL_KINDS)}")
        return getattr(self, kind)

    def concat(self, kind: str) -> tuple[int, ...]:
        """The nodes concatenated into the output of the `"normal"` or `"reduce"` cell."""
        self.cell(kind)  # validates `kind`
        return getattr(self, f"{kind}_concat")

    def node_inputs(self, kind: str) -> dict[int, Pairs]:
        """Map each intermediate node (2, 3, ...) to its (op, input_node) pairs."""
        pairs = self.cell(kind)
        return {
            NUM_INPUT_NODES + n: pairs[n * PAIRS_PER_NODE : (n + 1) * PAIRS_PER_NODE]
            for n in range(len(pairs) // PAIRS_PER_NODE)
        }

    @property
    def archid(self) -> str:
        """A stable short id: the leading hex digits of sha256 over the canonical JSON."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:ARCHID_HEX_DIGITS]

    def __str__(self) -> str:
        """One line, e.g. `normal: 2=sep_conv_3x3(0)+sep_conv_3x3(1) ... concat=2,3,4,5 | reduce: ...`."""
        parts = []
        for kind in CELL_KINDS:
            nodes = " ".join(
                f"{node}=" + "+".join(f"{op}({src})" for op, src in pairs)
                for node, pairs in self.node_inputs(kind).items()
            )
            parts.append(f"{kind}: {nodes} concat={','.join(map(str, self.concat(kind)))}")
        return " | ".join(parts)

    # ----------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, list[Any]]:
        """The JSON-ready form: `{"normal": [[op, input_node], ...], "normal_concat": [2, 3, 4, 5], ...}`."""
        out: dict[str, list[Any]] = {}
        for kind in CELL_KINDS:
            out[kind] = [[op, node] for op, node in self.cell(kind)]
            out[f"{kind}_concat"] = list(self.concat(kind))
        return out

    @classmethod
    def from_dict(cls, data: object) -> Genotype:
        """Build from the `to_dict` form; missing or extra keys and wrong types raise `GenotypeError`."""
        if not isinstance(data, Mapping):
            raise GenotypeError(f"a genotype must be a JSON object with keys {list(FIELDS)}, got {data!r}")
        missing = [k for k in FIELDS if k not in data]
        extra = sorted(str(k) for k in data if k not in FIELDS)
        if missing:
            raise GenotypeError(f"genotype is missing key(s) {missing}")
        if extra:
            raise GenotypeError(f"genotype has unknown key(s) {extra}; expected exactly {list(FIELDS)}")
        for key in FIELDS:
            if not isinstance(data[key], (list, tuple)):
                raise GenotypeError(f"genotype '{key}' must be a list, got {type(data[key]).__name__}")
        return cls(**{key: data[key] for key in FIELDS})

    def to_json(self, indent: int | None = 2) -> str:
        """Serialise `to_dict()` as JSON (keys in field order)."""
        return json.dumps(self.to_dict(), indent=indent)

    # ----------------------------------------------------------------------------- other forms
    @classmethod
    def from_darts_repr(cls, text: str) -> Genotype:
        """Read a published `Genotype(normal=[...], normal_concat=range(2, 6), ...)` string, never by eval.

        The DCP-NAS release's nested form (one list of pairs per node) is flattened.
        """
        return cls(**read_darts_repr(text, FIELDS))

    def to_darts_repr(self) -> str:
        """The DARTS `Genotype(normal=[...], normal_concat=[...], ...)` string (readable by DARTS code)."""
        fields = ", ".join(f"{key}={list(getattr(self, key))!r}" for key in FIELDS)
        return f"Genotype({fields})"
