"""The orders repository on SQL: orders, their history, their lines and the confirmations received for them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields, replace
from datetime import date
from typing import Any

from sqlalchemy import and_, or_, select, update

from gateway.domain.allocation import Line
from gateway.domain.instant import Instant
from gateway.domain.status import OPEN, OrderStatus
from gateway.store import schema
from gateway.store.records import ConfirmationRecord, LineRecord, OrderEvent, OrderQuery, OrderRecord
from gateway.store.sql.keyed import KEYED
from gateway.store.sql.repository import SqlRepository
from gateway.store.sql.statements import chunks

_O = schema.orders
_L = schema.order_lines
_C = schema.confirmations
_E = schema.order_events
_G = schema.ingest_ledger
_S = schema.stock

_LINE_FIELDS = tuple(field.name for field in fields(LineRecord))  # a stored line's columns, by name


class SqlOrders(SqlRepository):
    """The port's OrderRepository."""

    def get(self, partner_id: int, order_id: str) -> OrderRecord | None:
        """The order `order_id` with its lines, or None (keyed reads: a placement asks first whether it exists)."""
        for status, created_at, updated_at in self._fetch("order_head", partner_id, order_id):
            return OrderRecord(
                order_id=order_id,
                status=OrderStatus(status),
                lines=tuple(_line_record(row) for row in self._fetch("order_lines", partner_id, order_id)),
                updated_at=updated_at,
                created_at=created_at,
            )
        return None

    def _lines_of_orders(self, partner_id: int, order_ids: Sequence[str]) -> dict[str, list[LineRecord]]:
        """The lines of these orders, by order id, each order's by SKU."""
        found: dict[str, list[LineRecord]] = {}
        for chunk in chunks(order_ids):
            rows = self.connection.execute(
                select(
                    _L.c.order_id,
                    _L.c.sku,
                    _L.c.quantity,
                    _L.c.confirmed_quantity,
                    _L.c.confirmed_at,
                    _L.c.assembly,
                    _L.c.collection,
                    _L.c.demand_on,
                )
                .where(_L.c.partner_id == partner_id, _L.c.order_id.in_(chunk))
                .order_by(_L.c.order_id, _L.c.sku)
            )
            for row in rows:
                line = {name: row._mapping[name] for name in _LINE_FIELDS}
                found.setdefault(row.order_id, []).append(LineRecord(**line))
        return found

    def add(
        self, partner_id: int, order_id: str, status: OrderStatus, lines: Sequence[LineRecord], now: Instant
    ) -> None:
        """Store a new order and its lines."""
        self._write("add_order", partner_id, order_id, status.value, now, now)
        # a date as ISO text: SQLite's driver has no date adapter of its own any more, PostgreSQL casts the text
        rows = [
            (partner_id, order_id, line.sku, line.quantity, line.assembly, line.collection, _iso(line.demand_on))
            for line in lines
        ]
        self._run_many("add_lines", rows, KEYED)

    def set_status(self, partner_id: int, order_id: str, status: OrderStatus, now: Instant) -> None:
        """Record the order's new status."""
        self.connection.execute(
            update(_O)
            .where(_O.c.partner_id == partner_id, _O.c.order_id == order_id)
            .values(status=status.value, updated_at=now)
        )

    def add_confirmation(
        self, partner_id: int, order_id: str, sku: str, quantity: int, at: Instant, now: Instant, *, in_force: bool
    ) -> None:
        """Keep the confirmation; when in force, make it the line's."""
        self.connection.execute(
            _C.insert().values(
                partner_id=partner_id,
                order_id=order_id,
                sku=sku,
                confirmed_quantity=quantity,
                confirmed_at=at,
                received_at=now,
                in_force=in_force,
            )
        )
        if in_force:
            self.connection.execute(
                update(_L)
                .where(_L.c.partner_id == partner_id, _L.c.order_id == order_id, _L.c.sku == sku)
                .values(confirmed_quantity=quantity, confirmed_at=at)
            )

    def _lines_query(self, partner_id: int) -> Any:
        return (
            select(
                _L.c.order_id,
                _L.c.sku,
                _L.c.quantity,
                _O.c.status,
                _L.c.confirmed_quantity,
                _L.c.confirmed_at,
            )
            .select_from(_L.join(_O, and_(_O.c.partner_id == _L.c.partner_id, _O.c.order_id == _L.c.order_id)))
            .where(_L.c.partner_id == partner_id)
        )

    @staticmethod
    def _line(row: Any) -> Line:
        return Line(
            order_id=row.order_id,
            sku=row.sku,
            quantity=row.quantity,
            status=OrderStatus(row.status),
            confirmed_quantity=row.confirmed_quantity,
            confirmed_at=row.confirmed_at,
        )

    def lines_of(self, partner_id: int, skus: Sequence[str], statuses: Sequence[OrderStatus]) -> list[Line]:
        """Lines of `skus` whose order is in one of `statuses`, by SKU then order id."""
        found: list[Line] = []
        wanted = [s.value for s in statuses]
        for chunk in chunks(sorted(set(skus))):
            query = self._lines_query(partner_id).where(_L.c.sku.in_(chunk), _O.c.status.in_(wanted))
            found.extend(self._line(row) for row in self.connection.execute(query))
        found.sort(key=lambda line: (line.sku, line.order_id))
        return found

    def dated_lines(self, partner_id: int) -> list[tuple[Line, date]]:
        """One read of the dated lines of open orders."""
        query = self._lines_query(partner_id).add_columns(_L.c.demand_on)
        query = query.where(_L.c.demand_on.is_not(None), _O.c.status.in_(sorted(s.value for s in OPEN)))
        return [(self._line(row), row.demand_on) for row in self.connection.execute(query)]

    def all_lines(self, partner_id: int) -> Iterator[Line]:
        """Every line of the partner whose order is not cancelled."""
        query = self._lines_query(partner_id).where(_O.c.status != OrderStatus.CANCELLED.value)
        for row in self.connection.execute(query.execution_options(yield_per=5000)):
            yield self._line(row)

    # reading an order's history, its confirmations, and listing orders

    def add_event(self, partner_id: int, order_id: str, event: OrderEvent) -> None:
        """One row of order_events."""
        self._write("add_event", partner_id, order_id, event.status.value, event.at, event.ledger_id, event.command)

    def history(self, partner_id: int, order_id: str) -> list[OrderEvent]:
        """The order's steps, oldest first, each inbound item's with its ledger entry's source."""
        rows = self.connection.execute(
            select(_E.c.status, _E.c.at, _E.c.ledger_id, _E.c.command, _G.c.source)
            .select_from(_E.outerjoin(_G, _G.c.id == _E.c.ledger_id))
            .where(_E.c.partner_id == partner_id, _E.c.order_id == order_id)
            .order_by(_E.c.id)
        )
        return [
            OrderEvent(
                status=OrderStatus(row.status),
                at=row.at,
                ledger_id=row.ledger_id,
                command=row.command,
                source=row.source,
            )
            for row in rows
        ]

    def confirmations(self, partner_id: int, order_id: str) -> list[ConfirmationRecord]:
        """Every confirmation received for the order, by SKU then as received."""
        rows = self.connection.execute(
            select(_C.c.sku, _C.c.confirmed_quantity, _C.c.confirmed_at, _C.c.received_at, _C.c.in_force)
            .where(_C.c.partner_id == partner_id, _C.c.order_id == order_id)
            .order_by(_C.c.sku, _C.c.id)
        )
        return [
            ConfirmationRecord(
                sku=row.sku,
                confirmed_quantity=row.confirmed_quantity,
                confirmed_at=row.confirmed_at,
                received_at=row.received_at,
                in_force=bool(row.in_force),
            )
            for row in rows
        ]

    def find(self, partner_id: int, query: OrderQuery) -> list[OrderRecord]:
        """The orders `query` selects (filtered here, by the status index), with their lines."""
        if not query.statuses or query.limit < 1:
            return []
        wanted = sorted(status.value for status in query.statuses)
        heads = select(_O.c.order_id, _O.c.status, _O.c.created_at, _O.c.updated_at).where(
            _O.c.partner_id == partner_id, _O.c.status.in_(wanted)
        )
        if query.updated_before is not None:
            heads = heads.where(_O.c.updated_at < query.updated_before)
        if query.closed_unsettled:
            # a line its SKU's inventory may not include yet: no confirmation, no snapshot, or confirmed after it
            unsettled = (
                select(_L.c.sku)
                .select_from(_L.outerjoin(_S, and_(_S.c.partner_id == _L.c.partner_id, _S.c.sku == _L.c.sku)))
                .where(
                    _L.c.partner_id == _O.c.partner_id,
                    _L.c.order_id == _O.c.order_id,
                    or_(_L.c.confirmed_at.is_(None), _S.c.as_of.is_(None), _L.c.confirmed_at > _S.c.as_of),
                )
            )
            heads = heads.where(or_(_O.c.status != OrderStatus.CLOSED.value, unsettled.exists()))
        found = self.connection.execute(heads.order_by(_O.c.updated_at, _O.c.order_id).limit(query.limit)).all()
        lines = self._lines_of_orders(partner_id, [row.order_id for row in found])
        return [
            OrderRecord(
                order_id=row.order_id,
                status=OrderStatus(row.status),
                lines=tuple(lines.get(row.order_id, ())),
                updated_at=row.updated_at,
                created_at=row.created_at,
            )
            for row in found
        ]


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _line_record(row: Sequence[Any]) -> LineRecord:
    """A stored line read on the driver's cursor: SQLite's gives its date as the ISO text written."""
    line = LineRecord(*row)
    if isinstance(line.demand_on, str):
        return replace(line, demand_on=date.fromisoformat(line.demand_on))
    return line
