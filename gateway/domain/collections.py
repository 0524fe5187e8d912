"""Dated collections as the command line, files and the API set them: a window that can take orders, and which
collections are "ongoing" (open now) for the caps rules. The window itself is gateway.domain.days.CollectionDates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.domain import instant
from gateway.domain.days import CollectionDates
from gateway.domain.errors import Refusal
from gateway.domain.instant import Instant


@dataclass(eq=False)
class EmptyWindow(Refusal):
    """Dates whose `closes_at` is not after `opens_at`: such a collection could never take an order."""

    code = "collection_window_empty"
    assembly: str
    collection: str
    dates: CollectionDates

    def message(self) -> str:
        return (
            f"collection {self.collection} of assembly {self.assembly}: closes_at "
            f"{instant.to_iso(self.dates.closes_at)} is not after opens_at {instant.to_iso(self.dates.opens_at)} "
            f"(it would never take an order)"
        )


def check_window(assembly: str, collection: str, dates: CollectionDates) -> None:
    """Refuse (EmptyWindow) a window that closes at or before it opens; a missing bound leaves that side open."""
    if dates.opens_at is not None and dates.closes_at is not None and dates.closes_at <= dates.opens_at:
        raise EmptyWindow(assembly, collection, dates)


def ongoing(collections: Iterable[str], dated: Mapping[str, CollectionDates], now: Instant) -> list[str]:
    """The collections open at `now`, by name: a collection without dates (not in `dated`) is always open."""
    return sorted({name for name in collections if name not in dated or dated[name].is_open(now)})
