"""A partner's dated collections: each collection's window (when it takes orders) and its pickup date."""

from __future__ import annotations

from typing import Protocol

from gateway.domain.days import CollectionDates
from gateway.domain.instant import Instant
from gateway.store.records import CollectionRow


class CollectionRepository(Protocol):
    """Collection dates by (assembly, collection); a collection without stored dates has none (open at any time)."""

    def get(self, partner_id: int, assembly: str, collection: str) -> CollectionDates | None:
        """The collection's dates, None when it has none."""
        ...

    def put(self, partner_id: int, assembly: str, collection: str, dates: CollectionDates, now: Instant) -> None:
        """Replace the collection's dates; dates that are all None remove the collection's row (no dates)."""
        ...

    def rows(self, partner_id: int, assembly: str | None = None) -> list[CollectionRow]:
        """Stored dates, by assembly and collection (of one assembly)."""
        ...
