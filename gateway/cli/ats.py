"""`gateway ats`: available-to-sell per SKU or per collection of an assembly, and why a SKU's ATS is what it is."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, tzinfo

import click

from gateway import views
from gateway.cli.state import State
from gateway.cli.terminal import IDENTIFIER, check_channel, echo
from gateway.domain import days, instant
from gateway.domain.atp import Explanation as Schedule
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
@click.option(
    "--explain", is_flag=True, help="For one --sku: why its ATS is what it is (with dated supply: the schedule)."
)
@click.option(
    "--on",
    "on_text",
    metavar="DATE",
    help="Per SKU: the available-to-promise on this date (2026-12-15, or an instant: its date in the partner's "
    "zone); a date before today is today.",
)
@click.pass_obj
def ats(
    state: State,
    partner: str,
    skus: tuple[str, ...],
    assembly: str | None,
    collection: str | None,
    as_json: bool,
    explain: bool,
    on_text: str | None,
) -> None:
    """Show available-to-sell (published values: never negative), per SKU or per collection of an assembly.

    Per SKU, --json prints {sku, stock, allocated, ats, oversold, as_of} (`oversold`: the stock is below the
    allocation, which the published ATS 0 hides); with --on DATE, `on` and `atp` (the most a line for that date
    may take) beside them; per collection, {sku, assembly, collection, ats, cap, ordered}.
    """
    check_channel(assembly, collection)
    if explain and len(skus) != 1:
        raise click.UsageError("--explain needs exactly one --sku")
    if on_text is not None and assembly is not None:
        raise click.UsageError("--on is per SKU, not per collection")
    if assembly is not None and collection is not None:
        if not skus:
            raise click.UsageError("a collection's ATS needs at least one --sku")
        with state.app(partner) as app:
            today = days.today(app.clock(), app.settings.partner(partner).zone)
            channels = reads.channels(app.store, partner, skus, assembly, collection, today)
        _print_channels(channels, as_json, explain)
        return
    with state.app(partner) as app:
        settings = app.settings.partner(partner)
        today = days.today(app.clock(), settings.zone)
        on = _on(on_text, settings.zone)
        if explain:
            _print_explanation(reads.explain(app.store, partner, settings.policy, skus[0], today=today, on=on), as_json)
            return
        if on is not None:
            _print_atp(reads.atp_on(app.store, partner, list(skus), on, today), as_json)
            return
        found = reads.ats(app.store, partner, list(skus))
    if as_json:
        echo(json.dumps([views.ats(v) for v in found]))
        return
    echo(f"{'sku':<24} {'stock':>8} {'allocated':>10} {'ats':>8} {'oversold':>8}  as_of")
    for v in found:
        flag = "yes" if v.oversold else "no"
        echo(f"{v.sku:<24} {v.stock:>8} {v.allocated:>10} {v.ats:>8} {flag:>8}  {instant.to_iso(v.as_of) or '-'}")


def _on(text: str | None, zone: tzinfo) -> date | None:
    """The date `--on` names, in the partner's zone (a usage error when it names none)."""
    if text is None:
        return None
    try:
        return days.parse_day(text, zone)
    except (ValueError, OverflowError) as exc:
        raise click.BadParameter(str(exc), param_hint="--on") from None


def _print_atp(found: Sequence[queries.AtpView], as_json: bool) -> None:
    if as_json:
        echo(json.dumps([views.atp(v) for v in found]))
        return
    echo(f"{'sku':<24} {'stock':>8} {'allocated':>10} {'ats':>8} {'on':>10} {'atp':>8}")
    for v in found:
        view, on = v.view, v.on.isoformat()
        echo(f"{view.sku:<24} {view.stock:>8} {view.allocated:>10} {view.ats:>8} {on:>10} {max(0, v.atp):>8}")


def _print_schedule(schedule: Schedule) -> None:
    echo("  supply schedule (on hand today, then each receipt; each open line is demand on its date):")
    echo(f"    {'date':<10} {'supply':>8} {'demand':>8} {'balance':>8}")
    for day in schedule.days:
        echo(f"    {day.day.isoformat():<10} {day.supply:>8} {day.demand:>8} {day.balance:>8}")
    shown = f"{schedule.atp} (over-promised: published 0)" if schedule.atp < 0 else str(schedule.atp)
    echo(
        f"  ATP on {schedule.on.isoformat()}: {shown} = the smallest balance from that date on, "
        f"limiting date {schedule.limiting.isoformat()}"
    )


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
    flag = " (oversold)" if raw < 0 else ""
    if view.ats == max(0, raw):
        echo(f"  ATS {view.ats} = max(0, {view.stock} - {view.allocated}){flag}")
    else:  # receipts: today's ATS is the ATP for today, which later lines' units need not come out of
        echo(f"  ATS {view.ats} = max(0, ATP today), stock - allocated = {view.stock} - {view.allocated}{flag}")
    if explanation.schedule is not None:
        _print_schedule(explanation.schedule)


def with_old_names(body: dict[str, object]) -> dict[str, object]:
    """`body` with each old name of OLD_NAMES beside its new one, holding the same value."""
    renamed = {new: old for old, new in OLD_NAMES.items()}
    both: dict[str, object] = {}
    for name, value in body.items():
        both[name] = value
        if name in renamed:
            both[renamed[name]] = value
    return both
