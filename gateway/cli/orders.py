"""`gateway order`: place orders, move their status, record confirmations (each one command of the rules)."""

from __future__ import annotations

from dataclasses import replace

import click

from gateway.cli.render import run_and_show
from gateway.cli.state import State, parse_instant
from gateway.cli.terminal import IDENTIFIER, ORDER_LINE, check_channel, echo
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus, parse_status


@click.group()
def order() -> None:
    """Place orders, move their status, record confirmations."""


@order.command("place")
@click.option("--partner", required=True)
@click.option("--order-id", required=True, type=IDENTIFIER)
@click.option("--line", "lines", multiple=True, required=True, type=ORDER_LINE, help="SKU:QTY (repeatable).")
@click.option(
    "--assembly", type=IDENTIFIER, help="With --collection: place the lines in that collection of that assembly."
)
@click.option("--collection", type=IDENTIFIER, help="With --assembly: the collection.")
@click.pass_obj
def order_place(
    state: State,
    partner: str,
    order_id: str,
    lines: tuple[RequestedLine, ...],
    assembly: str | None,
    collection: str | None,
) -> None:
    """Place an order: every line fits its SKU's ATS (and its collection's cap), or nothing is placed."""
    check_channel(assembly, collection)
    requested = [replace(line, assembly=assembly, collection=collection) for line in lines]
    with state.app(partner) as app:
        run_and_show(lambda: app.commands.place(partner, order_id, requested))
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
