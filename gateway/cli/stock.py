"""`gateway stock set`: one SKU's stock level by hand."""

from __future__ import annotations

import click

from gateway.cli.render import print_changes, print_warnings, ran
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
    """Set one SKU's stock level, as a one-row snapshot (a level older than a confirmation applied since for the
    SKU is set, with a warning on stderr)."""
    moment = parse_instant(as_of, partner, state)
    with state.app(partner) as app:
        done = ran(lambda: app.commands.set_stock(partner, sku, quantity, moment))
    print_changes(done.changes)
    echo(f"SKU {sku} stock set to {quantity}")
    print_warnings(done.warnings)  # set all the same: exit 0
