"""`gateway stock set`: one SKU's stock level by hand."""

from __future__ import annotations

import click

from gateway.cli.render import run_and_show
from gateway.cli.state import State, parse_instant
from gateway.cli.terminal import IDENTIFIER, echo


@click.group()
def stock() -> None:
    """Set stock levels by hand."""


@stock.command("set")
@click.option("--partner", required=True)
@click.option("--sku", required=True, type=IDENTIFIER)
@click.option("--quantity", required=True, type=click.IntRange(min=0, max=999_999_999_999))
@click.option("--as-of", "as_of", help="The level's instant (ISO 8601; default now).")
@click.pass_obj
def stock_set(state: State, partner: str, sku: str, quantity: int, as_of: str | None) -> None:
    """Set one SKU's stock level, as a one-row snapshot."""
    moment = parse_instant(as_of, partner, state)
    with state.app(partner) as app:
        run_and_show(lambda: app.commands.set_stock(partner, sku, quantity, moment))
    echo(f"SKU {sku} stock set to {quantity}")
