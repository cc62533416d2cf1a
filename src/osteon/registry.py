"""A small name → object registry that refuses duplicates and suggests close names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from osteon.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps lowercase names to objects (builders, adapters, tasks).

    Example:
        >>> ADAPTERS = Registry("adapter")
        >>> @ADAPTERS.register("csv")
        ... def load_csv(path): ...
        >>> ADAPTERS.get("csv") is load_csv
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            key = (name or getattr(obj, "__name__", "")).lower()
            if not key:
                raise ValueError(f"Cannot register an unnamed {self.kind}; pass name=.")
            if key in self._items:
                raise ValueError(f"A {self.kind} named {key!r} is already registered; names must be unique.")
            self._items[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        key = name.lower()
        if key not in self._items:
            raise UnknownNameError(self.kind, name, list(self._items))
        return self._items[key]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
