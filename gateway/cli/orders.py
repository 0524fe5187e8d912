"""`gateway order`: place orders, move their status, record confirmations (each one command of the rules), and read
them: `order show` (one order whole) and `order list` (by status, age, and whether they hold stock)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import click

from gateway import views
from gateway.cli.errors import Refused
from gateway.cli.render import run_and_show
from gateway.cli.state import State, parse_instant
from gateway.cli.terminal import IDENTIFIER, ORDER_LINE, check_channel, echo
from gateway.domain import days, durations, instant
from gateway.domain.errors import UnknownOrder
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus, parse_status
from gateway.service import order_reads
from gateway.service.order_reads import LineView, OrderDetail, OrderListing


@click.group()
def order() -> None:
    """Place orders, move their status, record confirmations; show one order, list orders."""


@order.command("place")
@click.option("--partner", required=True)
@click.option("--order-id", required=True, type=IDENTIFIER)
@click.option("--line", "lines", multiple=True, required=True, type=ORDER_LINE, help="SKU:QTY (repeatable).")
@click.option(
    "--assembly", type=IDENTIFIER, help="With --collection: place the lines in that collection of that assembly."
)
@click.option("--collection", type=IDENTIFIER, help="With --assembly: the collection.")
@click.option(
    "--wanted-on",
    "wanted_on_text",
    metavar="DATE",
    help="The date the lines are wanted on (YYYY-MM-DD, or an instant: its date in the partner's zone); each line "
    "must fit the ATP on it. A collection's pickup date wins over it.",
)
@click.pass_obj
def order_place(
    state: State,
    partner: str,
    order_id: str,
    lines: tuple[RequestedLine, ...],
    assembly: str | None,
    collection: str | None,
    wanted_on_text: str | None,
) -> None:
    """Place an order: every line fits its SKU's ATS (and its collection's cap), or nothing is placed; with dates
    (--wanted-on, a collection's pickup date, receipts), the ATP on each line's date."""
    check_channel(assembly, collection)
    requested = [replace(line, assembly=assembly, collection=collection) for line in lines]
    with state.app(partner) as app:
        wanted_on = None
        if wanted_on_text is not None:
            try:
                wanted_on = days.parse_day(wanted_on_text, app.settings.partner(partner).zone)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--wanted-on") from None
        run_and_show(lambda: app.commands.place(partner, order_id, requested, wanted_on))
    echo(f"order {order_id} placed")


@order.command("set-status")
@click.option("--partner", required=True)
@click.option("--order-id", required=True, type=IDENTIFIER)
@click.option("--status", required=True, type=click.Choice([s.value for s in OrderStatus]))
@click.pass_obj
def order_set_status(state: State, partner: str, order_id: str, status: str) -> None:
    """Move an order forward (pending, confirmed, invoicing, closed) or cancel it."""
    with state.app(partner) as app:
        run_and_show(lambda: app.commands.set_status(partner, order_id, parse_status(status)))
    echo(f"order {order_id} is {status}")


@order.command("confirm")
@click.option("--partner", required=True)
@click.option("--order-id", required=True, type=IDENTIFIER)
@click.option("--sku", required=True, type=IDENTIFIER)
@click.option("--quantity", required=True, type=click.IntRange(min=0, max=999_999_999_999))
@click.option("--at", "at", required=True, help="The confirmation's instant (ISO 8601).")
@click.pass_obj
def order_confirm(state: State, partner: str, order_id: str, sku: str, quantity: int, at: str) -> None:
    """Record the partner's confirmed quantity for one order line."""
    moment = parse_instant(at, partner, state)
    assert moment is not None
    with state.app(partner) as app:
        run_and_show(lambda: app.commands.confirm(partner, order_id, sku, quantity, moment))
    echo(f"order {order_id} SKU {sku} confirmed at {quantity}")


class Duration(click.ParamType):  # type: ignore[type-arg, unused-ignore]  # generic from click 8.5 on
    """A duration such as 90m, 2h, 3d or 1d12h (units s, m, h, d, w), in microseconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """The duration in microseconds, or a usage error saying what is expected."""
        if isinstance(value, int):
            return value
        try:
            return durations.parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@order.command("show")
@click.option("--partner", required=True)
@click.option("--order-id", required=True, type=IDENTIFIER)
@click.option("--json", "as_json", is_flag=True, help="One JSON object: lines, history, confirmations.")
@click.pass_obj
def order_show(state: State, partner: str, order_id: str, as_json: bool) -> None:
    """One order whole: its lines and whether (and why) each allocates under the partner's stock mode, each status
    it reached with when and what moved it (a ledger entry, or a command given on the CLI or the API), and the
    confirmations received."""
    with state.app(partner) as app:
        try:
            found = order_reads.order(app.store, partner, app.settings.partner(partner).policy, order_id)
        except UnknownOrder as unknown:
            raise Refused(str(unknown)) from unknown
    if as_json:
        echo(json.dumps(views.order(found)))
        return
    _print_order(partner, found)


@order.command("list")
@click.option("--partner", required=True)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in OrderStatus]),
    help="Only orders in this status (repeatable; default: any).",
)
@click.option("--allocating", is_flag=True, help="Only orders with a line that holds stock under the stock mode.")
@click.option(
    "--older-than", type=Duration(), help="Only orders in their status for longer than this: 90m, 2h, 3d, 1w."
)
@click.option("--limit", type=click.IntRange(min=1, max=order_reads.MAX_LISTED), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of orders, each with its lines.")
@click.pass_obj
def order_list(
    state: State,
    partner: str,
    statuses: tuple[str, ...],
    allocating: bool,
    older_than: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """A partner's orders, those longest in their status first: e.g. the invoicing orders still waiting for their
    acknowledgement (--status invoicing --older-than 2d), or the closed lines that still hold stock in time_based
    mode (--status closed --allocating)."""
    wanted = order_reads.OrderFilter(
        statuses=[parse_status(s) for s in statuses], allocating=allocating, older_than=older_than, limit=limit
    )
    with state.app(partner) as app:
        found = order_reads.orders(app.store, partner, app.settings.partner(partner).policy, wanted, app.clock())
    if as_json:
        echo(json.dumps([views.order_summary(v) for v in found.orders]))
        return
    _print_listing(found, allocating, limit)


def _line_text(line: LineView) -> str:
    held = f"allocates {line.units} unit(s)" if line.allocates else "allocates nothing"
    return f"{held}: {line.rule}"


def _print_order(partner: str, found: OrderDetail) -> None:
    view = found.order
    echo(f"order {view.order_id} of {partner} ({found.mode} mode): {view.status.value}")
    echo(f"  placed {instant.to_iso(view.created_at)}, {view.status.value} since {instant.to_iso(view.updated_at)}")
    echo(f"  lines ({view.allocated} unit(s) allocated):")
    for line in view.lines:
        where = f" in {line.assembly}/{line.collection}" if line.assembly is not None else ""
        confirmed = (
            f", confirmed {line.confirmed_quantity} at {instant.to_iso(line.confirmed_at)}"
            if line.confirmed_quantity is not None
            else ""
        )
        inventory = instant.to_iso(line.inventory_at) or "none"
        echo(f"    {line.sku}: ordered {line.quantity}{where}{confirmed} (inventory timestamp {inventory})")
        echo(f"      {_line_text(line)}")
    echo("  history:")
    for event in found.history:
        by = views.moved_by(event) or "unknown (before the store kept histories)"
        source = f" ({event.source})" if event.source else ""
        echo(f"    {instant.to_iso(event.at)}  {event.status.value:<10} by {by}{source}")
    if not found.confirmations:
        echo("  no confirmation received")
        return
    echo("  confirmations:")
    for c in found.confirmations:
        standing = "in force" if c.in_force else "not in force: a later-stamped one came first"
        echo(
            f"    {c.sku}: {c.confirmed_quantity} at {instant.to_iso(c.confirmed_at)}, "
            f"received {instant.to_iso(c.received_at)} ({standing})"
        )


def _print_listing(found: OrderListing, allocating: bool, limit: int) -> None:
    if not found.orders:
        echo("no order matches")
        return
    echo(f"{'order_id':<24} {'status':<10} {'since':<27} {'lines':>5} {'allocated':>10}")
    for view in found.orders:
        since = instant.to_iso(view.updated_at) or "-"
        echo(f"{view.order_id:<24} {view.status.value:<10} {since:<27} {len(view.lines):>5} {view.allocated:>10}")
        if allocating:
            for line in view.lines:
                if line.allocates:
                    echo(f"    {line.sku}: {_line_text(line)}")
    if found.more:
        echo(f"(the first {limit} shown; --limit to see more)")
