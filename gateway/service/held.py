"""Published values held back until the end of a bundle (several files applied in one transaction).

While a bundle applies, a SKU's ATS (or a channel's) may move several times; only its value after the whole
bundle is queued, and only when it differs from the value published before the bundle's first change to it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

_Extra = TypeVar("_Extra")


class HeldBack(Generic[_Extra]):
    """Each key's value before its first change and its latest value (with what goes with it: an as_of, a body)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[int | None, int, _Extra]] = {}

    def hold(self, key: str, before: int | None, value: int, extra: _Extra) -> None:
        """`key` moved from `before` (None: never published) to `value`; a later move keeps the first `before`."""
        first = self._values.get(key)
        self._values[key] = (before if first is None else first[0], value, extra)

    def moved(self) -> list[tuple[str, int, _Extra]]:
        """(key, latest value, its extra) of every key whose latest value differs from its first `before`; the
        values held are forgotten."""
        moved = [(key, value, extra) for key, (before, value, extra) in self._values.items() if value != before]
        self._values = {}
        return moved
