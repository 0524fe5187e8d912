"""Channels: a SKU in one collection of one assembly, with its cap, the units ordered in it and its ATS.

The engine calls this book whenever a SKU's ATS, a collection's ordered units or a cap changes; it queues the
new channel ATS of every channel of that SKU whose value moved, in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from gateway.domain import caps as rules
from gateway.domain import days
from gateway.domain.balance import CumulativeBalance
from gateway.domain.caps import ALL_COLLECTIONS, AssemblyCaps, CapSource, EffectiveCap, OverCap
from gateway.domain.instant import Instant
from gateway.service import collections
from gateway.service.held import HeldBack
from gateway.store.port import ChannelRecord, LineRecord, UnitOfWork


@dataclass(frozen=True)
class ChannelView:
    """What one collection may still take of a SKU, and why: its cap and where the cap comes from, the units
    already ordered in it, and the SKU's own ATS."""

    sku: str
    assembly: str
    collection: str
    ats: int
    cap: int | None
    source: CapSource
    ordered: int
    sku_ats: int


@dataclass(frozen=True)
class Erased:
    """A collection's own cap setting that a command removed: `limit` None was "no maximum"."""

    collection: str
    limit: int | None


@dataclass(frozen=True)
class CapEdit:
    """What setting or clearing a cap did to one SKU in one assembly, for the person who asked.

    `collection` is the one set or cleared ("*": all collections of the assembly); `cap` is what applies there now
    (for "*", the assembly default); `erased` the collections' own settings the command removed; `over_cap` the
    collections it touched that now hold more units than their cap (orders already placed keep their units);
    `ongoing`, for "*" only, the assembly's collections open now (a cap or an order names them, or they have dates;
    one without dates is always open): the setting reaches them while they take orders."""

    sku: str
    assembly: str
    collection: str
    cap: EffectiveCap
    erased: tuple[Erased, ...] = ()
    over_cap: tuple[OverCap, ...] = ()
    ongoing: tuple[str, ...] = ()


@dataclass(frozen=True)
class CapLine:
    """One line of `gateway cap show`: the assembly default ("*"), or a collection with its own setting or units
    ordered under the default, with what it has ordered and what its cap leaves (negative: over its cap).

    The "*" line is a setting no order is placed in: `ordered` and `remaining` are None there."""

    sku: str
    assembly: str
    collection: str
    cap: EffectiveCap
    ordered: int | None
    remaining: int | None

    @property
    def over_cap(self) -> bool:
        """More units ordered in the collection than its cap allows."""
        return self.remaining is not None and self.remaining < 0


def channel_key(sku: str, assembly: str, collection: str) -> str:
    """The outbox key of a channel: unambiguous whatever characters the names hold."""
    return json.dumps([sku, assembly, collection], separators=(",", ":"))


def channel_units(lines: Iterable[LineRecord], sign: int) -> list[tuple[str, str, str, int]]:
    """The units of the order lines that name a channel, as ChannelBook.add_ordered takes them (`sign` -1 takes
    them back)."""
    return [
        (line.sku, line.assembly, line.collection, sign * line.quantity)
        for line in lines
        if line.assembly is not None and line.collection is not None
    ]


class ChannelBook:
    """The channels of one partner inside one store transaction."""

    def __init__(
        self, tx: UnitOfWork, partner_id: int, now: Instant, ledger_id: int | None, *, held_back: bool = False
    ) -> None:
        """`held_back`: channel values that move are queued by publish() only (see Engine's `held_back`)."""
        self.tx = tx
        self.partner_id = partner_id
        self.now = now
        self.ledger_id = ledger_id
        self._any: bool | None = None
        self.changed = 0
        self._held: HeldBack[str] | None = HeldBack() if held_back else None

    def any(self) -> bool:
        """Whether the partner has channels at all (asked once per transaction until one is made)."""
        if self._any is None:
            self._any = self.tx.caps.holds_channels(self.partner_id)
        return self._any

    def effective(self, sku: str, assembly: str, collection: str) -> EffectiveCap:
        """The cap in force for a SKU in one collection."""
        settings = self.tx.caps.get(self.partner_id, [sku]).get((sku, assembly)) or AssemblyCaps()
        return settings.effective(collection)

    def ordered(self, sku: str, assembly: str, collection: str) -> int:
        """Units of the SKU on lines of the collection that are not cancelled."""
        for record in self.tx.caps.channels(self.partner_id, [sku]):
            if (record.assembly, record.collection) == (assembly, collection):
                return record.ordered
        return 0

    def check(
        self, order_id: str, lines: Mapping[tuple[str, str], Mapping[str, int]], sku_ats: Mapping[str, int]
    ) -> None:
        """Refuse the order when any line exceeds what its collection's cap leaves (lines grouped by channel)."""
        for (assembly, collection), wanted in sorted(lines.items()):
            caps = {sku: self.effective(sku, assembly, collection) for sku in wanted}
            ordered = {sku: self.ordered(sku, assembly, collection) for sku in wanted}
            rules.check_channel_placement(order_id, assembly, collection, wanted, sku_ats, caps, ordered)

    def add_ordered(self, lines: Sequence[tuple[str, str, str, int]]) -> None:
        """Add (or, with negative units, take back) units ordered in channels: (sku, assembly, collection, units)."""
        if not lines:
            return
        held = {
            (r.sku, r.assembly, r.collection): r for r in self.tx.caps.channels(self.partner_id, [x[0] for x in lines])
        }
        touched: list[ChannelRecord] = []
        for sku, assembly, collection, units in lines:
            record = held.get((sku, assembly, collection))
            if record is None:
                record = held[(sku, assembly, collection)] = ChannelRecord(sku, assembly, collection)
            record.ordered += units
            touched.append(record)
        self.tx.caps.put_channels(self.partner_id, touched)
        self._any = True

    def register(self, sku: str, assembly: str, collection: str) -> None:
        """Make sure a channel exists (a cap was set for it), without changing what it holds."""
        self.add_ordered([(sku, assembly, collection, 0)])

    def set_cap(self, sku: str, assembly: str, collection: str | None, limit: int | None) -> CapEdit:
        """One collection's setting (`collection`), or the assembly-wide one (`collection=None`, which erases
        every collection's own setting): what it erased and the collections it leaves over their cap."""
        settings = self.tx.caps.get(self.partner_id, [sku]).get((sku, assembly)) or AssemblyCaps()
        erased: dict[str, int | None] = {}
        if collection is None:
            erased = settings.set_all(limit)
        else:
            settings.set_collection(collection, limit)
        self.tx.caps.put(self.partner_id, sku, assembly, settings, self.now)
        self.register(sku, assembly, ALL_COLLECTIONS if collection is None else collection)
        return self._edit(sku, assembly, collection or ALL_COLLECTIONS, settings, erased)

    def clear_cap(self, sku: str, assembly: str, collection: str) -> CapEdit:
        """Return one collection to the assembly default (its own setting, if any, erased); nothing is written
        when it has none."""
        settings = self.tx.caps.get(self.partner_id, [sku]).get((sku, assembly)) or AssemblyCaps()
        had, limit = settings.clear_collection(collection)
        if had:
            self.tx.caps.put(self.partner_id, sku, assembly, settings, self.now)
        return self._edit(sku, assembly, collection, settings, {collection: limit} if had else {})

    def _edit(
        self, sku: str, assembly: str, collection: str, settings: AssemblyCaps, erased: Mapping[str, int | None]
    ) -> CapEdit:
        """What a setting now in force means for the collections it touches (all of the assembly's for "*")."""
        ordered = {
            r.collection: r.ordered
            for r in self.tx.caps.channels(self.partner_id, [sku])
            if r.assembly == assembly and r.collection != ALL_COLLECTIONS
        }
        ongoing: list[str] = []
        if collection == ALL_COLLECTIONS:
            known = [*ordered, *erased, *settings.overrides]
            ongoing = collections.ongoing(self.tx, self.partner_id, assembly, known, self.now)
        else:
            ordered = {collection: ordered.get(collection, 0)}
        return CapEdit(
            sku=sku,
            assembly=assembly,
            collection=collection,
            cap=settings.effective(collection),
            erased=tuple(Erased(name, limit) for name, limit in sorted(erased.items())),
            over_cap=tuple(rules.over_cap(settings, ordered)),
            ongoing=tuple(ongoing),
        )

    def republish(
        self,
        sku_ats: Mapping[str, int],
        balances: Mapping[str, CumulativeBalance] | None = None,
        today: date | None = None,
    ) -> None:
        """Queue the channel ATS of every channel of these SKUs whose value moved (internal SKU ATS given).

        `balances` (SKUs holding receipts, with `today`): a collection with a `pickup_on` date publishes
        max(0, min(ATP on its pickup date, cap - ordered)) for them (docs/rules.md, "Dated collections")."""
        if not sku_ats or not self.any():
            return
        records = self.tx.caps.channels(self.partner_id, list(sku_ats))
        if not records:
            return
        settings = self.tx.caps.get(self.partner_id, sorted({r.sku for r in records}))
        pickups: dict[tuple[str, str], date | None] = {}
        moved: list[ChannelRecord] = []
        messages: list[tuple[str, int, str]] = []
        for record in records:
            cap = (settings.get((record.sku, record.assembly)) or AssemblyCaps()).effective(record.collection)
            available = sku_ats[record.sku]
            balance = None if balances is None or today is None else balances.get(record.sku)
            if balance is not None and today is not None:
                pickup = self._pickup_on(pickups, record.assembly, record.collection)
                if pickup is not None:
                    available = balance.room(days.from_today(pickup, today))
            value = rules.channel_ats(available, cap.limit, record.ordered)
            if value == record.published:
                continue
            before, record.published = record.published, value
            moved.append(record)
            body = {
                "sku": record.sku,
                "assembly": record.assembly,
                "collection": record.collection,
                "ats": value,
                "cap": cap.limit,
                "ordered": record.ordered,
            }
            key = channel_key(record.sku, record.assembly, record.collection)
            messages.append((key, value, json.dumps(body, sort_keys=True)))
            if self._held is not None:
                self._held.hold(key, before, value, messages[-1][2])
        self.tx.caps.put_channels(self.partner_id, moved)
        if self._held is None:
            self.changed += len(messages)
            self.tx.outbox.queue_channel_ats(self.partner_id, messages, self.ledger_id, self.now)

    def _pickup_on(self, known: dict[tuple[str, str], date | None], assembly: str, collection: str) -> date | None:
        """A collection's pickup date (None: none), read once per collection and call."""
        key = (assembly, collection)
        if key not in known:
            dates = self.tx.collections.get(self.partner_id, assembly, collection)
            known[key] = None if dates is None else dates.pickup_on
        return known[key]

    def publish(self) -> None:
        """Queue the channel values held back whose value after everything differs from before."""
        if self._held is not None:
            messages = self._held.moved()
            self.changed += len(messages)
            self.tx.outbox.queue_channel_ats(self.partner_id, messages, self.ledger_id, self.now)


def view(tx: UnitOfWork, partner_id: int, sku: str, assembly: str, collection: str, sku_ats: int) -> ChannelView:
    """One channel as the CLI and the platform see it (a collection never ordered from holds 0)."""
    book = ChannelBook(tx, partner_id, 0, None)
    cap = book.effective(sku, assembly, collection)
    ordered = book.ordered(sku, assembly, collection)
    return ChannelView(
        sku=sku,
        assembly=assembly,
        collection=collection,
        ats=rules.channel_ats(sku_ats, cap.limit, ordered),
        cap=cap.limit,
        source=cap.source,
        ordered=ordered,
        sku_ats=sku_ats,
    )


def cap_lines(tx: UnitOfWork, partner_id: int, sku: str | None = None, assembly: str | None = None) -> list[CapLine]:
    """Every (SKU, assembly) with a cap setting (of one SKU, one assembly): its default ("*" first), then each
    collection with its own setting or with units ordered under the default, by name. A collection under no cap
    at all is not a cap's business and is left out."""
    pairs = sorted({(row.sku, row.assembly) for row in tx.caps.rows(partner_id, sku, assembly)})
    if not pairs:
        return []
    skus = sorted({pair[0] for pair in pairs})
    settings = tx.caps.get(partner_id, skus)
    ordered: dict[tuple[str, str], dict[str, int]] = {}
    for record in tx.caps.channels(partner_id, skus):
        if record.collection != ALL_COLLECTIONS and record.ordered:
            ordered.setdefault((record.sku, record.assembly), {})[record.collection] = record.ordered
    lines: list[CapLine] = []
    for pair in pairs:
        held = settings.get(pair) or AssemblyCaps()
        if held.default is not None:
            lines.append(CapLine(*pair, ALL_COLLECTIONS, held.effective(ALL_COLLECTIONS), None, None))
        units = ordered.get(pair, {})
        for collection in sorted(held.overrides.keys() | units.keys()):
            cap = held.effective(collection)
            if cap.source is CapSource.NONE:
                continue
            count = units.get(collection, 0)
            lines.append(CapLine(*pair, collection, cap, count, rules.remaining(cap.limit, count)))
    return lines
