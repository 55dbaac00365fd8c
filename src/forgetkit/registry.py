"""One helper for every table of named things: training parts, training and unlearning
methods, repair methods, metrics, studies.

A ``Registry`` maps a name to an item and refuses a name registered twice. Each entry file
registers itself with one line, so adding a method or a metric is one file plus that line::

    TERMS = Registry("loss term")

    @TERMS.register("kl")
    def build_kl(ctx): ...

``get`` names the known entries when asked for an unknown one, so a typo on the command line
gets an answer, not a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from forgetkit.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named items of one kind, in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "loss term", "repair method"...: used in error messages
        self._items: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, item: T) -> T: ...

    def register(self, name: str, item: Any = None) -> Any:
        """Add ``item`` under ``name``; without ``item``, return a decorator that adds it."""
        if item is None:
            return lambda obj: self.register(name, obj)
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        if name not in self._items:
            raise UnknownNameError(f"unknown {self.kind} '{name}'; choose one of "
                                   f"{', '.join(sorted(self._items))}")
        return self._items[name]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def values(self) -> list[T]:
        return list(self._items.values())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"
