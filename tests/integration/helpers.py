"""Helpers for integration tests on a real store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gateway import bootstrap
from gateway.domain.status import OrderStatus
from gateway.service import queries
from gateway.store import schema


def contents(app: bootstrap.App, *, skip: tuple[str, ...] = ("ingest_ledger",)) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but `skip`), sorted: two equal results mean an unchanged store."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with app.store.engine.connect() as connection:
        for table in schema.metadata.sorted_tables:
            if table.name in skip:
                continue
            rows = connection.execute(select(table)).all()
            found[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return found


def ats(app: bootstrap.App, partner: str, sku: str) -> int:
    """The published ATS of one SKU."""
    with app.store.read() as tx:
        return queries.ats(tx, partner, [sku])[0].ats


def stock(app: bootstrap.App, partner: str, sku: str) -> int:
    """The stock level of one SKU."""
    with app.store.read() as tx:
        return queries.ats(tx, partner, [sku])[0].stock


def pending_ats(app: bootstrap.App, partner: str) -> dict[str, int | None]:
    """The undelivered ATS messages of a partner: SKU -> value."""
    with app.store.read() as tx:
        return {m.key: m.value for m in tx.outbox.rows(tx.partners.id_of(partner)) if m.kind == "ats"}


def messages(app: bootstrap.App, partner: str, kind: str) -> list[str]:
    """Keys of the partner's messages of `kind`, in every state."""
    with app.store.read() as tx:
        return [m.key for m in tx.outbox.rows(tx.partners.id_of(partner), state=None) if m.kind == kind]


def status_of(app: bootstrap.App, order_id: str, partner: str = "p") -> OrderStatus | None:
    """The order's status in the store, or None when the store does not hold it."""
    with app.store.read() as tx:
        order = tx.orders.get(tx.partners.id_of(partner), order_id)
    return None if order is None else order.status
