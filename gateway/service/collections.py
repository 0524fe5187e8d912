"""Dated collections: setting a collection's window and pickup date, reading them, refusing an order placed in a
collection outside its window (`collection_closed`), and telling which collections are ongoing (open now).

A collection without stored dates is open at any time (today's rules); its lines are demand today.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.domain import collections as rules
from gateway.domain import days
from gateway.domain.days import CollectionDates
from gateway.domain.instant import Instant
from gateway.store.port import UnitOfWork


@dataclass(frozen=True)
class CollectionLine:
    """One collection's dates and whether it takes orders now (`open_now`)."""

    assembly: str
    collection: str
    dates: CollectionDates
    open_now: bool


@dataclass(frozen=True)
class CollectionDone:
    """What setting a collection's dates did: the dates now in force, and those before (None: it had none)."""

    line: CollectionLine
    before: CollectionDates | None


def set_dates(
    tx: UnitOfWork, partner_id: int, assembly: str, collection: str, dates: CollectionDates, now: Instant
) -> CollectionDone:
    """Replace the collection's dates (all None: it has none any more); a window closing at or before it opens is
    refused (`collection_window_empty`). Orders already placed in it stay."""
    rules.check_window(assembly, collection, dates)
    before = tx.collections.get(partner_id, assembly, collection)
    tx.collections.put(partner_id, assembly, collection, dates, now)
    return CollectionDone(CollectionLine(assembly, collection, dates, dates.is_open(now)), before)


def lines(tx: UnitOfWork, partner_id: int, assembly: str | None, now: Instant) -> list[CollectionLine]:
    """The dated collections (of one assembly), by assembly and collection, each saying whether it is open now."""
    return [
        CollectionLine(row.assembly, row.collection, row.dates, row.dates.is_open(now))
        for row in tx.collections.rows(partner_id, assembly)
    ]


def check_open(
    tx: UnitOfWork, partner_id: int, order_id: str, channels: Iterable[tuple[str, str]], now: Instant
) -> None:
    """Refuse the order (`collection_closed`) when a collection it names, (assembly, collection), does not take
    orders at `now`; a collection without dates always does."""
    for assembly, collection in sorted(set(channels)):
        dates = tx.collections.get(partner_id, assembly, collection)
        if dates is not None:
            days.check_collection_open(order_id, assembly, collection, dates, now)


def ongoing(tx: UnitOfWork, partner_id: int, assembly: str, known: Iterable[str], now: Instant) -> list[str]:
    """The collections of `assembly` open at `now`, among `known` (those a cap or an order names) and the dated
    ones: "ongoing" in the caps rules. A collection without dates is ongoing."""
    dated = {row.collection: row.dates for row in tx.collections.rows(partner_id, assembly)}
    return rules.ongoing([*known, *dated], dated, now)
