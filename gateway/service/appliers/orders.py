"""Orders: a file of order lines, each order placed (or moved to its status) whole or refused whole.

Rows of an order the gateway does not hold place it, but only in `pending` or `confirmed`: a closing row for an
unknown order is a mistyped or lost one, refused (`unknown_order`) rather than placed as a phantom closed order.
"""

from __future__ import annotations

from gateway.domain import guards
from gateway.domain.errors import LineMismatch, Refusal, UnknownLine
from gateway.domain.orders import RequestedLine, merge_lines
from gateway.formats import rows as formats
from gateway.formats.csvfile import CsvTable
from gateway.formats.problems import Problem
from gateway.formats.rows import OrderRow
from gateway.service.appliers.base import Applier, Applying, counting
from gateway.service.items import Rejected


class Orders(Applier[None]):
    """Orders come as flat files only."""

    def apply_file(self, item: Applying, table: CsvTable) -> None:
        """Place each new order, move each known one to its status; an order the rules refuse is refused alone."""
        engine, result = item.engine, item.result
        tx = engine.tx
        # An order is one unit: all its rows in the file are placed (or moved) together, or refused together.
        orders: dict[str, list[OrderRow]] = {}
        for row in counting(formats.read_orders(table, item.partner.zone), item.progress):
            rows = orders.setdefault(row.order_id, [])
            if rows and rows[0].status != row.status:
                table.problems.add(
                    Problem(
                        row.line,
                        f"order {row.order_id} is given status {row.status.value} here but "
                        f"{rows[0].status.value} at line {rows[0].line}",
                        "status",
                    )
                )
            elif rows and rows[0].wanted_on != row.wanted_on:
                table.problems.add(
                    Problem(
                        row.line,
                        f"order {row.order_id} is given wanted_on {row.wanted_on or 'none'} here but "
                        f"{rows[0].wanted_on or 'none'} at line {rows[0].line}",
                        "wanted_on",
                    )
                )
            rows.append(row)
        if table.problems:
            raise Rejected(table.problems)
        for order_id, rows in orders.items():
            try:
                existing = tx.orders.get(engine.partner_id, order_id)
                if existing is None:
                    guards.check_new_order_status(order_id, rows[0].status)  # a typo'd id must not place an order
                    engine.place(order_id, [r.requested for r in rows], rows[0].status, rows[0].wanted_on)
                else:
                    given = [RequestedLine(r.requested.sku, r.requested.quantity) for r in rows]
                    for sku, line in merge_lines(order_id, given).items():
                        held = existing.line(sku)
                        if held is None:
                            raise UnknownLine(order_id, sku)
                        if held.quantity != line.quantity:
                            raise LineMismatch(order_id, sku, line.quantity, held.quantity)
                    engine.set_status(order_id, rows[0].status)
                result.counts.applied += len(rows)
            except Refusal as refusal:
                result.counts.refused += len(rows)
                result.refusals.extend(Problem(r.line, str(refusal), reason=refusal.code) for r in rows)
