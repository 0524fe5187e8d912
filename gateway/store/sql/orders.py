"""The orders repository on SQL: orders, their lines and the confirmations received for them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import and_, select, update

from gateway.domain.allocation import Line
from gateway.domain.instant import Instant
from gateway.domain.status import OrderStatus
from gateway.store import schema
from gateway.store.records import LineRecord, OrderRecord
from gateway.store.sql.repository import SqlRepository
from gateway.store.sql.statements import chunks

_O = schema.orders
_L = schema.order_lines
_C = schema.confirmations


class SqlOrders(SqlRepository):
    """The port's OrderRepository."""

    def get(self, partner_id: int, order_id: str) -> OrderRecord | None:
        """The order `order_id` with its lines, or None."""
        head = self.connection.execute(
            select(_O.c.status, _O.c.updated_at).where(_O.c.partner_id == partner_id, _O.c.order_id == order_id)
        ).one_or_none()
        if head is None:
            return None
        lines = self.connection.execute(
            select(
                _L.c.sku,
                _L.c.quantity,
                _L.c.confirmed_quantity,
                _L.c.confirmed_at,
                _L.c.assembly,
                _L.c.collection,
            )
            .where(_L.c.partner_id == partner_id, _L.c.order_id == order_id)
            .order_by(_L.c.sku)
        )
        return OrderRecord(
            order_id=order_id,
            status=OrderStatus(head.status),
            lines=tuple(LineRecord(**row._mapping) for row in lines),
            updated_at=head.updated_at,
        )

    def add(
        self, partner_id: int, order_id: str, status: OrderStatus, lines: Sequence[LineRecord], now: Instant
    ) -> None:
        """Store a new order and its lines."""
        self.connection.execute(
            _O.insert().values(
                partner_id=partner_id, order_id=order_id, status=status.value, created_at=now, updated_at=now
            )
        )
        self.connection.execute(
            _L.insert(),
            [
                {
                    "partner_id": partner_id,
                    "order_id": order_id,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "assembly": line.assembly,
                    "collection": line.collection,
                }
                for line in lines
            ],
        )

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

    def all_lines(self, partner_id: int) -> Iterator[Line]:
        """Every line of the partner whose order is not cancelled."""
        query = self._lines_query(partner_id).where(_O.c.status != OrderStatus.CANCELLED.value)
        for row in self.connection.execute(query.execution_options(yield_per=5000)):
            yield self._line(row)
