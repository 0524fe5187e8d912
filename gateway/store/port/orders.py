"""A partner's orders: their status and its history, their lines and the confirmations received for them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Protocol

from gateway.domain.allocation import Line
from gateway.domain.instant import Instant
from gateway.domain.status import OrderStatus
from gateway.store.records import ConfirmationRecord, LineRecord, OrderEvent, OrderQuery, OrderRecord


class OrderRepository(Protocol):
    """Orders and their lines. Statuses and confirmations are decided by the rules; the store keeps them."""

    def get(self, partner_id: int, order_id: str) -> OrderRecord | None:
        """The order and its lines, or None."""
        ...

    def add(
        self, partner_id: int, order_id: str, status: OrderStatus, lines: Sequence[LineRecord], now: Instant
    ) -> None:
        """Store a new order with its lines (an order id taken already: Conflict leaving the block)."""
        ...

    def set_status(self, partner_id: int, order_id: str, status: OrderStatus, now: Instant) -> None:
        """Record an order's new status."""
        ...

    def add_confirmation(
        self, partner_id: int, order_id: str, sku: str, quantity: int, at: Instant, now: Instant, *, in_force: bool
    ) -> None:
        """Keep a confirmation; when `in_force`, it becomes the line's confirmation."""
        ...

    def lines_of(self, partner_id: int, skus: Sequence[str], statuses: Sequence[OrderStatus]) -> list[Line]:
        """Lines of the given SKUs whose order is in one of `statuses` (by SKU, then order id)."""
        ...

    def dated_lines(self, partner_id: int) -> list[tuple[Line, date]]:
        """Every line of an open order of the partner that has a demand date, with that date."""
        ...

    def all_lines(self, partner_id: int) -> Iterator[Line]:
        """Every line of the partner that is not cancelled."""
        ...

    def add_event(self, partner_id: int, order_id: str, event: OrderEvent) -> None:
        """Keep a step of the order's history: it reached `event.status` at `event.at`, moved by the inbound item of
        ledger entry `event.ledger_id`, or by a command given on `event.command` (`cli`, `api`); its `source` is
        read back from the ledger, never written. The engine writes it with the move, in the same transaction."""
        ...

    def history(self, partner_id: int, order_id: str) -> list[OrderEvent]:
        """The order's steps, oldest first (each with its ledger entry's source); empty for an unknown order."""
        ...

    def confirmations(self, partner_id: int, order_id: str) -> list[ConfirmationRecord]:
        """Every confirmation received for the order's lines, by SKU then in the order received."""
        ...

    def find(self, partner_id: int, query: OrderQuery) -> list[OrderRecord]:
        """The orders `query` selects, with their lines, by the instant each reached its status, then order id;
        the store filters, so only the orders listed are read."""
        ...
