"""The one generic name -> object registry (after fvcore/timm).

Names become objects only through a `Registry`: an unknown name raises a `RegistryError`
that names the registry and lists the valid choices, a duplicate registration is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from binas.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named mapping from strings to objects (classes, factories, data)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register `obj` under `name`; without `obj`, return a decorator."""

        def _add(item: T) -> T:
            if name in self._items:
                raise RegistryError(f"{self.kind} '{name}' is already registered")
            self._items[name] = item
            return item

        if obj is None:
            return _add
        return _add(obj)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(f"unknown {self.kind} '{name}'; choose one of: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
