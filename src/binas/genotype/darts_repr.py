"""Read the `Genotype(normal=[...], normal_concat=range(2, 6), ...)` strings of published NAS code.

Those strings are Python calls, so `ast.literal_eval` rejects them, and `eval` would run arbitrary code
(STYLE.md §5, "eval of strings from CLI/config"). This module parses the text with `ast.parse` and walks
the tree, accepting only: one `Genotype(...)` call (optionally assigned to a name, as in
`DARTS_V2 = Genotype(...)`), whose arguments are literal lists/tuples of str/int and `range(a[, b])`.
Anything else raises a one-line `GenotypeError`; nothing in the text is ever executed.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from binas.errors import GenotypeError

#: Longest accepted text; published genotype strings are a few hundred characters.
MAX_REPR_CHARS = 20_000
#: Longest accepted `range(...)`; a cell never has more than a handful of nodes.
MAX_RANGE_LEN = 64
#: Deepest accepted literal nesting: field -> node list -> pair list -> pair -> value.
MAX_DEPTH = 5
#: The only callable names the walker accepts.
CALL_NAME = "Genotype"
RANGE_NAME = "range"


def _where(node: ast.AST) -> str:
    return f"line {getattr(node, 'lineno', '?')}, column {getattr(node, 'col_offset', '?')}"


def _reject(node: ast.AST, what: str) -> GenotypeError:
    return GenotypeError(
        f"unsupported {what} in Genotype string at {_where(node)}: only literal lists/tuples of "
        f"str/int and range(a, b) are allowed"
    )


def _range(node: ast.Call) -> list[int]:
    """`range(b)` or `range(a, b)` with non-negative int literals, as a list."""
    if node.keywords or not 1 <= len(node.args) <= 2:
        raise _reject(node, "range(...) form")
    bounds = []
    for arg in node.args:
        if not (isinstance(arg, ast.Constant) and type(arg.value) is int and arg.value >= 0):
            raise _reject(arg, "range(...) argument")
        bounds.append(arg.value)
    values = range(*bounds)
    if len(values) > MAX_RANGE_LEN:
        raise GenotypeError(f"range{tuple(bounds)} at {_where(node)} is too long for a cell")
    return list(values)


def _literal(node: ast.AST, depth: int = 0) -> Any:
    """Convert an allowed literal node to plain Python lists/str/int; reject everything else."""
    if depth > MAX_DEPTH:
        raise _reject(node, "nesting depth")
    if isinstance(node, ast.Constant) and type(node.value) in (str, int):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(elt, depth + 1) for elt in node.elts]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == RANGE_NAME:
        return _range(node)
    raise _reject(node, f"expression ({type(node).__name__})")


def _flatten_nested(value: Any) -> Any:
    """Flatten the DCP-NAS release's per-node form `[[(op, i), (op, j)], ...]` to a flat pair list."""
    nested = (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(node, list) and bool(node) and all(isinstance(pair, list) for pair in node) for node in value
        )
    )
    return [pair for node in value for pair in node] if nested else value


def _find_call(text: str) -> ast.Call:
    """Parse `text` and return its single `Genotype(...)` call node."""
    if len(text) > MAX_REPR_CHARS:
        raise GenotypeError(f"Genotype string is too long ({len(text)} > {MAX_REPR_CHARS} characters)")
    try:
        tree = ast.parse(text.strip(), mode="exec")
    except SyntaxError as err:
        raise GenotypeError(f"Genotype string is not valid Python syntax: {err.msg} (line {err.lineno})") from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise GenotypeError(f"Genotype string cannot be parsed: {type(err).__name__}") from None
    if len(tree.body) != 1:
        raise GenotypeError(f"expected a single Genotype(...) expression, got {len(tree.body)} statements")
    stmt = tree.body[0]
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        call = stmt.value
    elif isinstance(stmt, ast.Expr):
        call = stmt.value
    else:
        raise _reject(stmt, f"statement ({type(stmt).__name__})")
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == CALL_NAME):
        raise _reject(call, f"expression ({type(call).__name__}); expected {CALL_NAME}(...)")
    return call


def read_darts_repr(text: str, fields: Sequence[str]) -> dict[str, Any]:
    """Return the `Genotype(...)` arguments of `text` as plain lists, keyed by `fields`.

    Positional arguments map to `fields` in order; keywords must be among `fields`. Every field must be
    given exactly once. Per-node nested pair lists are flattened.
    """
    if not isinstance(text, str):
        raise GenotypeError(f"a Genotype string must be str, got {type(text).__name__}")
    call = _find_call(text)
    if len(call.args) > len(fields):
        raise GenotypeError(f"Genotype(...) takes at most {len(fields)} arguments, got {len(call.args)}")
    values: dict[str, Any] = {}
    for name, arg in zip(fields, call.args):
        values[name] = _literal(arg)
    for kw in call.keywords:
        if kw.arg is None:
            raise _reject(kw.value, "**mapping argument")
        if kw.arg not in fields:
            raise GenotypeError(f"unknown Genotype field '{kw.arg}'; expected {list(fields)}")
        if kw.arg in values:
            raise GenotypeError(f"Genotype field '{kw.arg}' is given twice")
        values[kw.arg] = _literal(kw.value)
    missing = [name for name in fields if name not in values]
    if missing:
        raise GenotypeError(f"Genotype string is missing field(s) {missing}")
    return {name: _flatten_nested(value) for name, value in values.items()}
