"""Read-only use cases, each in a read transaction of its own: ATS per SKU, per collection of an assembly and
explained, and the caps. The entry points (CLI, API) call these instead of opening the store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from gateway.domain.instant import Instant
from gateway.domain.modes import Policy
from gateway.service import collections, queries
from gateway.service.channels import CapLine, ChannelView, cap_lines
from gateway.store.port import Store


def ats(store: Store, partner: str, skus: Sequence[str] | None = None) -> list[queries.AtsView]:
    """ATS of the given SKUs (a SKU the store has never seen shows zeros), or of every SKU held."""
    with store.read() as tx:
        return queries.ats(tx, partner, skus)


def oversold_counts(store: Store, partners: Iterable[str]) -> dict[str, int]:
    """How many SKUs of each partner are oversold (stock level below allocation), all read in one transaction,
    one count per partner asked of the store."""
    with store.read() as tx:
        return {partner: tx.stock.count_oversold(tx.partners.id_of(partner)) for partner in partners}


def breakers(store: Store, partners: Iterable[str]) -> dict[str, Instant | None]:
    """Each partner's circuit breaker as the store keeps it: until when it is open (past: waiting for a probe batch
    to go through), None when closed; all read in one transaction."""
    with store.read() as tx:
        return {partner: tx.partners.breaker_open_until(tx.partners.id_of(partner)) for partner in partners}


def channels(
    store: Store, partner: str, skus: Sequence[str], assembly: str, collection: str, today: date | None = None
) -> list[ChannelView]:
    """What one collection of one assembly may still take of each SKU (each once, in the order given); given
    `today` (the partner's date), a SKU with receipts stands on the ATP (see queries.channel)."""
    with store.read() as tx:
        return [queries.channel(tx, partner, sku, assembly, collection, today) for sku in dict.fromkeys(skus)]


def atp_on(store: Store, partner: str, skus: Sequence[str] | None, on: date, today: date) -> list[queries.AtpView]:
    """The ATS and the ATP on `on` of the given SKUs, or of every SKU held (`today`: the partner's date)."""
    with store.read() as tx:
        return queries.atp_on(tx, partner, skus, on, today)


def explain(
    store: Store, partner: str, policy: Policy, sku: str, *, today: date | None = None, on: date | None = None
) -> queries.Explanation:
    """The snapshot a SKU's ATS stands on and every line that allocates, recomputed from the lines; given `today`,
    the supply schedule when the SKU has receipts or `on` is asked (see queries.explain)."""
    with store.read() as tx:
        return queries.explain(tx, partner, policy, sku, today=today, on=on)


def caps(store: Store, partner: str, sku: str | None = None, assembly: str | None = None) -> list[CapLine]:
    """The partner's caps (of one SKU, one assembly), by SKU, assembly and collection ("*", the default, first):
    each setting, and each collection ordered into under the default, with its units ordered and what is left."""
    with store.read() as tx:
        return cap_lines(tx, tx.partners.id_of(partner), sku, assembly)


def collections_of(store: Store, partner: str, assembly: str | None, now: Instant) -> list[collections.CollectionLine]:
    """The partner's dated collections (of one assembly), by assembly and collection, each open at `now` or not."""
    with store.read() as tx:
        return collections.lines(tx, tx.partners.id_of(partner), assembly, now)


def ping(store: Store) -> None:
    """Ask the store a trivial question: its error when it cannot answer (readiness)."""
    with store.read() as tx:
        tx.stock.holds(0)
