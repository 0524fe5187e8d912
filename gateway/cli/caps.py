"""`gateway cap`: cap how many units of a SKU one collection of an assembly may take, and list the caps."""

from __future__ import annotations

import json

import click

from gateway import views
from gateway.cli.render import run_and_show
from gateway.cli.state import State
from gateway.cli.terminal import IDENTIFIER, echo
from gateway.service import reads


@click.group()
def cap() -> None:
    """Cap how many units of a SKU one collection of an assembly may take."""


@cap.command("set")
@click.option("--partner", required=True)
@click.option("--sku", required=True, type=IDENTIFIER)
@click.option("--assembly", required=True, type=IDENTIFIER)
@click.option("--collection", type=IDENTIFIER, help="Cap this collection only.")
@click.option("--all-collections", is_flag=True, help="Apply to all collections of the assembly, ongoing ones too.")
@click.option("--max", "limit", type=click.IntRange(min=0, max=999_999_999_999), help="The maximum of units.")
@click.option("--no-max", is_flag=True, help="No maximum (for one collection: only the overall stock counts).")
@click.pass_obj
def cap_set(
    state: State,
    partner: str,
    sku: str,
    assembly: str,
    collection: str | None,
    all_collections: bool,
    limit: int | None,
    no_max: bool,
) -> None:
    """Set a cap: --collection C or --all-collections, and --max N or --no-max."""
    if (collection is None) == (not all_collections):
        raise click.UsageError("give exactly one of --collection C and --all-collections")
    if (limit is None) == (not no_max):
        raise click.UsageError("give exactly one of --max N and --no-max")
    if collection is not None and "*" in collection:
        raise click.UsageError("a collection is named; use --all-collections for all of them")
    with state.app(partner) as app:
        run_and_show(lambda: app.commands.set_cap(partner, sku, assembly, collection, limit))
    where = f"all collections of {assembly}" if collection is None else f"collection {collection} of {assembly}"
    echo(f"SKU {sku}, {where}: {'no maximum' if limit is None else f'at most {limit}'}")


@cap.command("show")
@click.option("--partner", required=True)
@click.option("--sku", type=IDENTIFIER)
@click.option("--assembly", type=IDENTIFIER)
@click.option(
    "--json", "as_json", is_flag=True, help="[{sku, assembly, collection, max}]; collection * is the default."
)
@click.pass_obj
def cap_show(state: State, partner: str, sku: str | None, assembly: str | None, as_json: bool) -> None:
    """List cap settings: each assembly's default (collection *) and each collection's own."""
    with state.app(partner) as app:
        rows = reads.caps(app.store, partner, sku, assembly)
    if as_json:
        echo(json.dumps([views.cap(r) for r in rows]))
        return
    echo(f"{'sku':<24} {'assembly':<16} {'collection':<16} max")
    for r in rows:
        shown = "no maximum" if r.max_units is None else str(r.max_units)
        label = "* (all)" if r.collection == "*" else r.collection
        echo(f"{r.sku:<24} {r.assembly:<16} {label:<16} {shown}")
