"""Strict typed configs: YAML / dicts -> nested ``@dataclass`` configs, and back.

Config classes are plain dataclasses (written in ``config/schema.py``); this module knows none of them.
Loading is strict on purpose: an unknown key or a value of the wrong type is a user error and becomes
ONE ``ConfigError`` line naming the dotted path, the bad value and what was expected, e.g.
``search.darts.arch_lr: expected a float, got 'abc'``: a silently ignored typo makes a different run.

Supported field types: ``int``, ``float`` (ints and numeric strings such as ``"3e-4"`` accepted),
``bool`` (strict: only true/false), ``str``, ``pathlib.Path``, ``Literal[...]``, ``X | None`` and other
unions, ``tuple[X, ...]``, ``tuple[X, Y]``, ``list[X]``, ``dict[K, V]``, nested dataclasses and ``Any``.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from binas.errors import ConfigError

T = TypeVar("T")

_MAX_SHOWN = 60  # characters of a bad value quoted in an error message (keeps errors on one line)
# Plain (unquoted) exponent numbers that YAML 1.1 leaves as strings: "1e-3", "3E5", ".5e2".
_EXP_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_PLAIN_FLOAT = re.compile(r"^\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*$")
_WORDS = {  # the scalar types a config field may have, as words for "expected ..." messages
    bool: "a bool (true or false)",
    int: "an int",
    float: "a float",
    str: "a string",
    Path: "a path string",
    types.NoneType: "null",
}


class _Mismatch(ConfigError):
    """A value has the wrong type at ``path`` itself (not deeper); unions re-word it."""

    def __init__(self, path: str, expected: str, value: Any, hint: str = "") -> None:
        super().__init__(f"{path or 'config'}: expected {expected}, got {_show(value)}{hint}")
        self.path = path


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-3`` as a float (YAML 1.2 style) and rejects duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    problem = f"duplicate key '{key_node.value}'"
                    raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789."))


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build the dataclass ``cls`` from a mapping (parsed YAML), recursively and strictly.

    Fields with defaults may be omitted. ``where`` is the dotted path of ``data`` in the whole config,
    used only in messages. Raises a one-line ConfigError for an unknown key, a missing required key
    or a value of the wrong type; a ``ValueError`` from the class's ``__post_init__`` is re-raised as a
    ConfigError at ``where``, so config classes can check ranges with a plain ``ValueError``.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"from_dict needs a dataclass type, got {cls!r}")
    if not isinstance(data, Mapping):
        raise _Mismatch(where, f"a mapping of {cls.__name__} fields", data)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = get_type_hints(cls)  # resolves string annotations (`from __future__ import annotations`)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; valid keys: {', '.join(fields)}"
            raise ConfigError(f"unknown key '{_join(where, str(key))}'{hint}")
        kwargs[key] = _convert(value, hints[key], _join(where, key))
    for name, field in fields.items():
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if required and name not in kwargs:
            raise ConfigError(f"missing required key '{_join(where, name)}'")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{where or cls.__name__}: {_first_line(exc)}") from None


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check / coerce one value against the annotation ``tp``; raise ConfigError naming ``path``."""
    if tp is Any or tp is object:
        return value
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return _convert_union(value, tp, path)
    if origin is Literal:
        return _convert_literal(value, tp, path)
    if origin in (list, tuple, dict) or tp in (list, tuple, dict):
        return _convert_container(value, tp, origin or tp, path)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else from_dict(tp, value, where=path)
    if tp in _WORDS:
        return _convert_scalar(value, tp, path)
    raise TypeError(f"{path}: unsupported config field type {tp!r}")


def _convert_scalar(value: Any, tp: type, path: str) -> Any:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)  # bool is an int subclass
    if tp is bool and isinstance(value, bool) or tp is str and isinstance(value, str):
        return value
    if tp is types.NoneType and value is None:
        return None
    if tp is int and number and (isinstance(value, int) or value.is_integer()):  # `--set steps=1e4`
        return int(value)
    if tp is float and (number or isinstance(value, str) and _PLAIN_FLOAT.match(value)):
        return float(value)  # a string here is e.g. "3e-4", which YAML 1.1 leaves unparsed
    if tp is Path and isinstance(value, (str, Path)):
        return Path(value)
    raise _Mismatch(path, _describe(tp), value)


def _convert_union(value: Any, tp: Any, path: str) -> Any:
    args = get_args(tp)
    if value is None and types.NoneType in args:
        return None
    deeper: ConfigError | None = None
    for arg in (a for a in args if a is not types.NoneType):
        try:
            return _convert(value, arg, path)
        except ConfigError as exc:  # keep the first error found *inside* the value, if any
            if not (isinstance(exc, _Mismatch) and exc.path == path):
                deeper = deeper or exc
    if deeper is not None:  # the value had the right shape but something inside it was wrong
        raise deeper
    raise _Mismatch(path, _describe(tp), value)


def _convert_literal(value: Any, tp: Any, path: str) -> Any:
    choices = get_args(tp)
    for choice in choices:  # compare types too: True == 1 must not pass for Literal[1]
        if value == choice and type(value) is type(choice):
            return choice
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [c for c in choices if isinstance(c, str)], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise _Mismatch(path, _describe(tp), value, hint)


def _convert_container(value: Any, tp: Any, kind: type, path: str) -> Any:
    args = get_args(tp)
    if kind is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch(path, _describe(tp), value)
        key_tp, val_tp = args if args else (Any, Any)
        return {
            _convert(k, key_tp, f"{path}.<key {k!r}>"): _convert(v, val_tp, _join(path, str(k)))
            for k, v in value.items()
        }
    if not isinstance(value, (list, tuple)):
        raise _Mismatch(path, _describe(tp), value)
    if kind is list or not args or args[-1] is Ellipsis:  # list[X], tuple[X, ...], bare list/tuple
        item_types = [args[0] if args else Any] * len(value)
    elif len(value) == len(args):  # tuple[X, Y]
        item_types = list(args)
    else:
        raise _Mismatch(path, _describe(tp), value)
    items = [_convert(v, t, f"{path}[{i}]") for i, (v, t) in enumerate(zip(value, item_types))]
    return items if kind is list else tuple(items)


def _describe(tp: Any) -> str:
    """Human words for an annotation, for 'expected ...' messages."""
    if tp in _WORDS:
        return _WORDS[tp]
    origin, args = get_origin(tp), get_args(tp)
    if origin is Union or origin is types.UnionType:
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"a list of {len(args)} items"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} fields"
    return "a mapping" if dict in (tp, origin) else "a list"  # list, tuple, list[X], tuple[X, ...]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass (or mapping) as plain YAML/JSON-safe data: tuples -> lists, paths -> strings."""
    if not ((dataclasses.is_dataclass(obj) and not isinstance(obj, type)) or isinstance(obj, Mapping)):
        raise TypeError(f"to_dict needs a dataclass instance or a mapping, got {type(obj).__name__}")
    return _plain(obj)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot turn a {type(obj).__name__} into config data: {obj!r}")


def dump_yaml(obj: Any, path: str | Path) -> None:
    """Write a config (dataclass or mapping) as YAML, keys in field order (e.g. config.resolved.yaml)."""
    text = yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=False, allow_unicode=True)
    Path(path).write_text(text, encoding="utf-8")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file as a dict (an empty file is ``{}``).

    A missing/unreadable file, a YAML syntax error or duplicate key (as ``path:line:column``) or a top
    level that is not a mapping is a one-line ConfigError.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {_first_line(exc)}") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or _first_line(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to a copy of ``data``; missing intermediate mappings are created.

    Values are parsed as YAML (``1e-3`` -> float, ``true``, ``[1,2]``; ``a.b=`` is null). Whether the
    key exists is checked later by :func:`from_dict`, which knows the schema.
    """
    result: dict[str, Any] = copy.deepcopy(dict(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = [p.strip() for p in key.split(".")]
        if not sep or not all(parts):
            raise ConfigError(f"malformed override {item!r}: expected key=value, e.g. search.epochs=5")
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise ConfigError(f"override {item!r}: '{prefix}' is {_show(child)}, not a mapping")
            node = child
        try:
            node[parts[-1]] = yaml.load(raw, Loader=_Loader)  # _Loader is a SafeLoader
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or _first_line(exc)
            raise ConfigError(f"override {item!r}: cannot parse the value: {problem}") from None
    return result


def load_config(cls: type[T], path: str | Path | None, overrides: Sequence[str] = ()) -> T:
    """Load YAML (or start from ``{}``), apply ``--set`` overrides, validate into ``cls``."""
    data = load_yaml(path) if path is not None else {}
    return from_dict(cls, apply_overrides(data, overrides))
