"""`gateway collection`: a collection's dates (when it takes orders, when its lines are picked up), and the list of
dated collections with whether each takes orders now."""

from __future__ import annotations

import json
from datetime import date

import click

from gateway import views
from gateway.cli.errors import Refused
from gateway.cli.state import State, parse_instant
from gateway.cli.terminal import IDENTIFIER, echo
from gateway.domain import days, instant
from gateway.domain.days import CollectionDates
from gateway.domain.errors import Refusal
from gateway.service import reads
from gateway.service.collections import CollectionLine


@click.group()
def collection() -> None:
    """Date a collection: when it takes orders and when its lines are picked up."""


def _moment(text: str | None, option: str, partner: str, state: State) -> int | None:
    try:
        return parse_instant(text, partner, state)
    except click.BadParameter as exc:  # named: a command with two instants must say which one is wrong
        raise click.BadParameter(exc.message, param_hint=option) from None


def _pickup(text: str | None, partner: str, state: State) -> date | None:
    if text is None:
        return None
    try:
        return days.parse_day(text, state.partner(partner).zone)
    except (ValueError, OverflowError):  # an instant at the edge of the years may leave them in the zone
        raise click.BadParameter(f"not an ISO 8601 date: {text!r}", param_hint="--pickup-on") from None


def _window(line: CollectionLine) -> str:
    """The window and pickup date in words."""
    opens, closes = instant.to_iso(line.dates.opens_at), instant.to_iso(line.dates.closes_at)
    window = f"takes orders from {opens or 'any time'} until {closes or 'no end'}"
    pickup = f"pickup on {line.dates.pickup_on.isoformat()}" if line.dates.pickup_on else "no pickup date"
    return f"{window}, {pickup}; {'open' if line.open_now else 'closed'} now"


@collection.command("set")
@click.option("--partner", required=True)
@click.option("--assembly", required=True, type=IDENTIFIER)
@click.option("--collection", "name", required=True, type=IDENTIFIER)
@click.option("--opens-at", help="Orders are taken from then (ISO 8601; without an offset, the partner's zone).")
@click.option("--closes-at", help="Orders are refused from then on (collection_closed).")
@click.option("--pickup-on", help="The date its lines are demand for (YYYY-MM-DD).")
@click.option(
    "--json", "as_json", is_flag=True, help="{assembly, collection, opens_at, closes_at, pickup_on, open_now, ...}."
)
@click.pass_obj
def collection_set(
    state: State,
    partner: str,
    assembly: str,
    name: str,
    opens_at: str | None,
    closes_at: str | None,
    pickup_on: str | None,
    as_json: bool,
) -> None:
    """Set a collection's dates, replacing its dates whole: a date not given is none (no option at all: no dates).

    Orders in the collection before --opens-at or from --closes-at on are refused (collection_closed); orders
    already placed stay."""
    dates = CollectionDates(
        _moment(opens_at, "--opens-at", partner, state),
        _moment(closes_at, "--closes-at", partner, state),
        _pickup(pickup_on, partner, state),
    )
    with state.app(partner) as app:
        try:
            done = app.commands.set_collection(partner, assembly, name, dates)
        except Refusal as refusal:
            raise Refused(str(refusal)) from refusal
    if as_json:
        echo(json.dumps(views.collection_done(done)))
        return
    echo(f"collection {name} of {assembly}: {_window(done.line)}")


@collection.command("show")
@click.option("--partner", required=True)
@click.option("--assembly", type=IDENTIFIER)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="[{assembly, collection, opens_at, closes_at, pickup_on, open_now}].",
)
@click.pass_obj
def collection_show(state: State, partner: str, assembly: str | None, as_json: bool) -> None:
    """List the dated collections (of one assembly), each with whether it takes orders now; a collection without
    dates takes orders at any time and is not listed."""
    with state.app(partner) as app:
        lines = reads.collections_of(app.store, partner, assembly, app.clock())
    if as_json:
        echo(json.dumps([views.collection(line) for line in lines]))
        return
    echo(f"{'assembly':<16} {'collection':<16} {'opens_at':<28} {'closes_at':<28} {'pickup_on':<10} open_now")
    for line in lines:
        body = views.collection(line)
        cells = [str(body[k] or "-") for k in ("opens_at", "closes_at", "pickup_on")]
        echo(
            f"{line.assembly:<16} {line.collection:<16} {cells[0]:<28} {cells[1]:<28} {cells[2]:<10} "
            f"{'yes' if line.open_now else 'no'}"
        )
