"""The shape shared by ctpipe's extension registries (drift tests, metrics): entries by name,
each applying to some groups (column kinds, tasks), refused with the known names listed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """A dict of entries by name, in registration order, with checked registration and lookup.

    ``what`` names an entry in messages ("metric", "drift test"); ``groups`` says which groups
    an entry applies to; ``mismatch`` words the refusal of an entry for the wrong group.
    """

    def __init__(self, what: str, groups: Callable[[T], tuple[str, ...]],
                 mismatch: Callable[[str, T, str], str]) -> None:
        super().__init__()
        self.what, self._groups, self._mismatch = what, groups, mismatch

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        if name in self and not replace:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self[name] = entry
        return entry

    def names(self, group: str | None = None) -> list[str]:
        return [n for n, e in self.items() if group is None or group in self._groups(e)]

    def lookup(self, name: str, group: str | None = None) -> T:
        """The entry ``name``; with ``group``, refuse an entry that does not apply to it."""
        entry = self.get(name)
        if entry is None:
            raise ValueError(f"unknown {self.what} {name!r}; known: {', '.join(self.names())}")
        if group is not None and group not in self._groups(entry):
            raise ValueError(self._mismatch(name, entry, group))
        return entry
