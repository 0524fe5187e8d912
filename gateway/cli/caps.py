"""`gateway cap`: cap how many units of a SKU one collection of an assembly may take, return a collection to the
assembly default, and list the caps with what each collection has ordered and has left."""

from __future__ import annotations

import json
from collections.abc import Callable

import click

from gateway import views
from gateway.cli.errors import Refused
from gateway.cli.render import print_changes
from gateway.cli.state import State
from gateway.cli.terminal import IDENTIFIER, echo
from gateway.domain.caps import ALL_COLLECTIONS, CapSource, EffectiveCap
from gateway.domain.errors import Refusal
from gateway.service import reads
from gateway.service.commands import CapDone


@click.group()
def cap() -> None:
    """Cap how many units of a SKU one collection of an assembly may take."""


def _limit(limit: int | None) -> str:
    return "no maximum" if limit is None else f"at most {limit}"


def _in_force(cap: EffectiveCap) -> str:
    """The cap in force and where it comes from, in words."""
    if cap.source is CapSource.NONE:
        return "no cap (no setting of its own, no assembly default)"
    return f"{_limit(cap.limit)}, from the {cap.source.value}"


def _run(action: Callable[[], CapDone]) -> CapDone:
    try:
        return action()
    except Refusal as refusal:
        raise Refused(str(refusal)) from refusal


def _show(done: CapDone, headline: str, as_json: bool, *, list_erased: bool = True) -> None:
    """The command's headline, then what it erased (unless the headline says it), the collections over their cap
    and the ATS it moved; or with `as_json` the view of it all (gateway.views.cap_done)."""
    if as_json:
        echo(json.dumps(views.cap_done(done)))
        return
    echo(headline)
    for erased in done.edit.erased if list_erased else ():
        echo(f"  erased: collection {erased.collection}'s own setting ({_limit(erased.limit)})")
    for over in done.edit.over_cap:
        echo(
            f"  over cap: collection {over.collection} holds {over.ordered} ordered, cap {over.cap} "
            f"({over.ordered - over.cap} over; the orders stay, it takes no more)"
        )
    if done.edit.ongoing:
        echo(f"  ongoing (open now, reached by the setting): {', '.join(done.edit.ongoing)}")
    print_changes(done.changes)


@cap.command("set")
@click.option("--partner", required=True)
@click.option("--sku", required=True, type=IDENTIFIER)
@click.option("--assembly", required=True, type=IDENTIFIER)
@click.option("--collection", type=IDENTIFIER, help="Cap this collection only.")
@click.option("--all-collections", is_flag=True, help="Apply to all collections of the assembly, ongoing ones too.")
@click.option("--max", "limit", type=click.IntRange(min=0, max=999_999_999_999), help="The maximum of units.")
@click.option("--no-max", is_flag=True, help="No maximum (for one collection: only the overall stock counts).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="{sku, assembly, collection, max, cap_source, erased, over_cap, ongoing, ...}.",
)
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
    as_json: bool,
) -> None:
    """Set a cap: --collection C or --all-collections, and --max N or --no-max.

    --all-collections erases every collection's own setting in the assembly: it prints the settings it erased, the
    collections now holding more than the new cap, and the ongoing ones (open now; a collection without dates
    always is)."""
    if (collection is None) == (not all_collections):
        raise click.UsageError("give exactly one of --collection C and --all-collections")
    if (limit is None) == (not no_max):
        raise click.UsageError("give exactly one of --max N and --no-max")
    if collection is not None and "*" in collection:
        raise click.UsageError("a collection is named; use --all-collections for all of them")
    with state.app(partner) as app:
        done = _run(lambda: app.commands.set_cap(partner, sku, assembly, collection, limit))
    where = f"all collections of {assembly}" if collection is None else f"collection {collection} of {assembly}"
    _show(done, f"SKU {sku}, {where}: {_limit(limit)}", as_json)


@cap.command("clear")
@click.option("--partner", required=True)
@click.option("--sku", required=True, type=IDENTIFIER)
@click.option("--assembly", required=True, type=IDENTIFIER)
@click.option("--collection", required=True, type=IDENTIFIER, help="The collection to return to the default.")
@click.option("--json", "as_json", is_flag=True, help="As `cap set --json`: erased is empty when nothing was set.")
@click.pass_obj
def cap_clear(state: State, partner: str, sku: str, assembly: str, collection: str, as_json: bool) -> None:
    """Return one collection to the assembly default: its own setting goes (a collection with none is left as it
    is, exit 0). Prints what it had and what applies now."""
    if "*" in collection:
        raise click.UsageError("a collection is named; to change the default use cap set --all-collections")
    with state.app(partner) as app:
        done = _run(lambda: app.commands.clear_cap(partner, sku, assembly, collection))
    erased = done.edit.erased
    had = f"its own setting ({_limit(erased[0].limit)}) cleared" if erased else "no setting of its own, nothing cleared"
    headline = f"SKU {sku}, collection {collection} of {assembly}: {had}; now {_in_force(done.edit.cap)}"
    _show(done, headline, as_json, list_erased=False)


@cap.command("show")
@click.option("--partner", required=True)
@click.option("--sku", type=IDENTIFIER)
@click.option("--assembly", type=IDENTIFIER)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="[{sku, assembly, collection, max, cap_source, ordered, remaining, over_cap}]; collection * is the default.",
)
@click.pass_obj
def cap_show(state: State, partner: str, sku: str | None, assembly: str | None, as_json: bool) -> None:
    """List caps: each assembly's default (collection *), then each collection with its own setting or with units
    ordered under the default: the cap in force, the units ordered (not cancelled) and what the cap leaves
    (negative when the collection is over its cap)."""
    with state.app(partner) as app:
        lines = reads.caps(app.store, partner, sku, assembly)
    if as_json:
        echo(json.dumps([views.cap(line) for line in lines]))
        return
    echo(f"{'sku':<24} {'assembly':<16} {'collection':<16} {'max':<16} {'ordered':>8} {'remaining':>9}")
    for line in lines:
        default = line.collection == ALL_COLLECTIONS
        label = "* (all)" if default else line.collection
        limit = "no maximum" if line.cap.limit is None else str(line.cap.limit)
        if line.cap.source is CapSource.ASSEMBLY and not default:
            limit += " (default)"
        ordered = "-" if line.ordered is None else str(line.ordered)
        left = "-" if line.remaining is None else str(line.remaining)
        flag = "  over cap" if line.over_cap else ""
        echo(f"{line.sku:<24} {line.assembly:<16} {label:<16} {limit:<16} {ordered:>8} {left:>9}{flag}")
