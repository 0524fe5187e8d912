"""`gateway ats`: available-to-sell per SKU or per collection of an assembly, and why a SKU's ATS is what it is."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from gateway import views
from gateway.cli.state import State
from gateway.cli.terminal import IDENTIFIER, check_channel, echo
from gateway.domain import instant
from gateway.domain.caps import CapSource
from gateway.service import queries, reads
from gateway.service.channels import ChannelView

# The names `--explain --json` printed before it took the platform API's (views.explanation), kept beside the new
# ones for one release (README, "Command line"): old name -> new name.
OLD_NAMES = {"set_by_ledger_id": "set_by_ledger_entry", "lines_not_allocating": "non_allocating_lines"}


@click.command()
@click.option("--partner", required=True)
@click.option("--sku", "skus", multiple=True, type=IDENTIFIER, help="Only these SKUs (repeatable).")
@click.option(
    "--assembly", type=IDENTIFIER, help="With --collection: the ATS of that collection (channel ATS), cap included."
)
@click.option("--collection", type=IDENTIFIER, help="With --assembly: the collection.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects, one per SKU.")
@click.option("--explain", is_flag=True, help="For one --sku: why its ATS is what it is.")
@click.pass_obj
def ats(
    state: State,
    partner: str,
    skus: tuple[str, ...],
    assembly: str | None,
    collection: str | None,
    as_json: bool,
    explain: bool,
) -> None:
    """Show available-to-sell (published values: never negative), per SKU or per collection of an assembly.

    Per SKU, --json prints {sku, stock, allocated, ats, oversold, as_of} (`oversold`: the stock is below the
    allocation, which the published ATS 0 hides); per collection, {sku, assembly, collection, ats, cap, ordered}.
    """
    check_channel(assembly, collection)
    if explain and len(skus) != 1:
        raise click.UsageError("--explain needs exactly one --sku")
    if assembly is not None and collection is not None:
        if not skus:
            raise click.UsageError("a collection's ATS needs at least one --sku")
        with state.app(partner) as app:
            channels = reads.channels(app.store, partner, skus, assembly, collection)
        _print_channels(channels, as_json, explain)
        return
    with state.app(partner) as app:
        if explain:
            _print_explanation(
                reads.explain(app.store, partner, app.settings.partner(partner).policy, skus[0]), as_json
            )
            return
        found = reads.ats(app.store, partner, list(skus))
    if as_json:
        echo(json.dumps([views.ats(v) for v in found]))
        return
    echo(f"{'sku':<24} {'stock':>8} {'allocated':>10} {'ats':>8} {'oversold':>8}  as_of")
    for v in found:
        flag = "yes" if v.oversold else "no"
        echo(f"{v.sku:<24} {v.stock:>8} {v.allocated:>10} {v.ats:>8} {flag:>8}  {instant.to_iso(v.as_of) or '-'}")


def _print_channels(channels: Sequence[ChannelView], as_json: bool, explain: bool) -> None:
    if as_json:
        echo(json.dumps([views.channel(v, explained=explain) for v in channels]))
        return
    for v in channels:
        if not explain:
            cap = "no cap" if v.cap is None else f"cap {v.cap}"
            echo(f"{v.sku} in {v.assembly}/{v.collection}: ATS {v.ats} ({cap}, {v.ordered} ordered)")
            continue
        echo(f"SKU {v.sku} in collection {v.collection} of assembly {v.assembly}")
        if v.cap is None:
            why = (
                "an explicit no maximum for this collection: only the overall stock counts"
                if v.source == CapSource.COLLECTION
                else "no cap in this assembly: only the overall stock counts"
            )
            echo(f"  cap: none ({why})")
            echo(f"  ATS {v.ats} = max(0, SKU ATS {v.sku_ats})")
        else:
            echo(f"  cap: {v.cap}, from the {v.source.value}")
            echo(f"  {v.ordered} unit(s) ordered in this collection (cancelled lines not counted)")
            echo(f"  ATS {v.ats} = max(0, min(SKU ATS {v.sku_ats}, {v.cap} - {v.ordered}))")


def _print_explanation(explanation: queries.Explanation, as_json: bool) -> None:
    view = explanation.view
    if as_json:
        echo(json.dumps(with_old_names(views.explanation(explanation))))
        return
    source = f"ledger entry {explanation.set_by}" if explanation.set_by is not None else "a command"
    snapshot = (
        f"stock {view.stock} as of {instant.to_iso(view.as_of)}, set by {source}"
        if view.as_of is not None
        else f"stock {view.stock}, never set by a snapshot"
    )
    echo(f"SKU {view.sku} ({explanation.mode} mode)")
    echo(f"  {snapshot}")
    echo(f"  allocated {view.allocated} by {len(explanation.lines)} line(s):")
    for line in explanation.lines:
        echo(f"    order {line.order_id} ({line.status}, ordered {line.quantity}): {line.units} unit(s), {line.rule}")
    if explanation.non_allocating:
        echo(f"  {explanation.non_allocating} other open or closed line(s) allocate nothing")
    raw = view.stock - view.allocated
    echo(f"  ATS {view.ats} = max(0, {view.stock} - {view.allocated})" + (" (oversold)" if raw < 0 else ""))


def with_old_names(body: dict[str, object]) -> dict[str, object]:
    """`body` with each old name of OLD_NAMES beside its new one, holding the same value."""
    renamed = {new: old for old, new in OLD_NAMES.items()}
    both: dict[str, object] = {}
    for name, value in body.items():
        both[name] = value
        if name in renamed:
            both[renamed[name]] = value
    return both
