"""Channels: a SKU in one collection of one assembly, with its cap, the units ordered in it and its ATS.

The engine calls this book whenever a SKU's ATS, a collection's ordered units or a cap changes; it queues the
new channel ATS of every channel of that SKU whose value moved, in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gateway.domain import caps as rules
from gateway.domain.caps import ALL_COLLECTIONS, AssemblyCaps, CapSource, EffectiveCap
from gateway.domain.instant import Instant
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

    def __init__(self, tx: UnitOfWork, partner_id: int, now: Instant, ledger_id: int | None) -> None:
        self.tx = tx
        self.partner_id = partner_id
        self.now = now
        self.ledger_id = ledger_id
        self._any: bool | None = None
        self.changed = 0

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

    def set_cap(self, sku: str, assembly: str, collection: str | None, limit: int | None) -> AssemblyCaps:
        """One collection's setting (`collection`), or the assembly-wide one (`collection=None`)."""
        settings = self.tx.caps.get(self.partner_id, [sku]).get((sku, assembly)) or AssemblyCaps()
        if collection is None:
            settings.set_all(limit)
        else:
            settings.set_collection(collection, limit)
        self.tx.caps.put(self.partner_id, sku, assembly, settings, self.now)
        self.register(sku, assembly, ALL_COLLECTIONS if collection is None else collection)
        return settings

    def republish(self, sku_ats: Mapping[str, int]) -> None:
        """Queue the channel ATS of every channel of these SKUs whose value moved (internal SKU ATS given)."""
        if not sku_ats or not self.any():
            return
        records = self.tx.caps.channels(self.partner_id, list(sku_ats))
        if not records:
            return
        settings = self.tx.caps.get(self.partner_id, sorted({r.sku for r in records}))
        moved: list[ChannelRecord] = []
        messages: list[tuple[str, int, str]] = []
        for record in records:
            cap = (settings.get((record.sku, record.assembly)) or AssemblyCaps()).effective(record.collection)
            value = rules.channel_ats(sku_ats[record.sku], cap.limit, record.ordered)
            if value == record.published:
                continue
            record.published = value
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
        self.changed += len(messages)
        self.tx.caps.put_channels(self.partner_id, moved)
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
