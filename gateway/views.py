"""The JSON shape of each thing the gateway shows, defined once: the command line's `--json` output and the platform
API's answers are built here, so the same thing carries the same names and values wherever it is read.

Each function takes what a service or the store gives back and returns a plain dict, ready for `json.dumps` (or,
in the API, for the pydantic model that documents it: `platform_api/schemas.py`, whose fields a unit test keeps
equal to these). Instants are ISO 8601 texts in UTC, or None. The names are the platform API's (the documented
contract); the command line's older names for the same fields are its own affair (`gateway/cli/ats.py`).

A view renders: it decides no rule and reads nothing. It may import the domain, the store's records and the
services' result types, never an entry point or a transport (tests/unit/test_layers.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.domain import instant

if TYPE_CHECKING:  # the shapes only: a command imports the use cases it runs, not every one
    from gateway.domain.atp import Explanation as Schedule
    from gateway.domain.caps import OverCap
    from gateway.domain.instant import Instant
    from gateway.service.bundles import BundleResult
    from gateway.service.channels import CapLine, ChannelView, Erased
    from gateway.service.collections import CollectionDone, CollectionLine
    from gateway.service.commands import CapDone
    from gateway.service.items import IngestResult, ItemWarning
    from gateway.service.order_reads import LineView, OrderDetail, OrderView
    from gateway.service.outbox_view import ListedMessage, OutboxListing, PartnerStatus
    from gateway.service.queries import AllocatingLine, AtpView, AtsView, Explanation
    from gateway.service.snapshots import AtsChange
    from gateway.store.records import ConfirmationRecord, LedgerRecord, LedgerTally, OrderEvent, OutboxCount

Json = dict[str, object]

# the fields that hold an instant, wherever they are shown
_INSTANTS = frozenset({"as_of", "received_at", "created_at", "oldest", "next_attempt_at"})


def _fields(source: object, *names: str) -> Json:
    """The named attributes of `source` under their own names, in that order; an instant as its ISO 8601 text."""
    body: Json = {}
    for name in names:
        value = getattr(source, name)
        body[name] = instant.to_iso(value) if name in _INSTANTS else value
    return body


# ATS


def ats(view: AtsView) -> Json:
    """One SKU's ATS (`ats` the published value, never negative; `oversold` when the stock is below the
    allocation): `gateway ats --json`, `GET ats`."""
    return _fields(view, "sku", "stock", "allocated", "ats", "oversold", "as_of")


def atp(found: AtpView) -> Json:
    """One SKU's ATS and its available-to-promise on a date: `gateway ats --on DATE --json`, `GET ats?on=DATE`.
    The fields of `ats`, then `on` (the date asked; today when it was before today) and `atp` (the most a line for
    that date may take, published: never negative)."""
    return ats(found.view) | {"on": found.on.isoformat(), "atp": max(0, found.atp)}


def schedule(found: Schedule) -> Json:
    """A SKU's supply schedule from today on: each date's units arriving (`supply`), units wanted (`demand`) and
    the cumulative `balance`; the ATP on `on` (the smallest balance from `on` on: negative when over-promised)
    and the `limiting` date that holds it."""
    return {
        "on": found.on.isoformat(),
        "atp": found.atp,
        "limiting": found.limiting.isoformat(),
        "days": [
            {"date": day.day.isoformat(), "supply": day.supply, "demand": day.demand, "balance": day.balance}
            for day in found.days
        ],
    }


def channel(view: ChannelView, *, explained: bool = False) -> Json:
    """What one collection of an assembly may still take of a SKU: `gateway ats --assembly A --collection C
    --json`, `GET ats?assembly=A&collection=C`. With `explained` (the command's `--explain`), where the cap comes
    from and the SKU's own ATS (published: never negative) too."""
    body = _fields(view, "sku", "assembly", "collection", "ats", "cap", "ordered")
    if explained:
        body |= {"cap_source": view.source.value, "sku_ats": max(0, view.sku_ats)}
    return body


def allocating_line(line: AllocatingLine) -> Json:
    """A line that holds units of a SKU, and the rule that makes it count."""
    return _fields(line, "order_id", "status", "quantity", "confirmed_quantity", "units", "rule")


def explanation(found: Explanation) -> Json:
    """Why a SKU's ATS is what it is: `gateway ats --sku S --explain --json`, `GET ats/{sku}/explain`.

    `set_by_ledger_entry` is the ledger entry of the snapshot that set the level (None when a command set it, or
    nothing did); `non_allocating_lines` counts the open or closed lines that hold nothing. `schedule` (see
    `schedule`) only when the SKU has dated supply or dated demand, or an ATP date was asked (`--on`, `?on=`)."""
    view = found.view
    body: Json = {
        "sku": view.sku,
        "mode": found.mode,
        **_fields(view, "stock", "as_of", "allocated", "ats"),
        "set_by_ledger_entry": found.set_by,
        "lines": [allocating_line(line) for line in found.lines],
        "non_allocating_lines": found.non_allocating,
    }
    if found.schedule is not None:
        body["schedule"] = schedule(found.schedule)
    return body


def ats_change(change: AtsChange) -> Json:
    """A published ATS value that moved (`before` None: never published): a command's answer in the API, each
    change of `gateway ingest --json`."""
    return _fields(change, "sku", "before", "after")


def cap(line: CapLine) -> Json:
    """One cap: `gateway cap show --json`, `GET caps`. First the setting as `PUT caps` takes it (`collection` "*":
    the assembly default; `max` None: no maximum), then where the cap in force comes from, the units ordered in the
    collection (not cancelled), what the cap leaves (`max - ordered`: negative when the collection is over its
    cap, None with no maximum) and whether it is over. The "*" line takes no order: `ordered`, `remaining` None."""
    return {
        "sku": line.sku,
        "assembly": line.assembly,
        "collection": line.collection,
        "max": line.cap.limit,
        "cap_source": line.cap.source.value,
        "ordered": line.ordered,
        "remaining": line.remaining,
        "over_cap": line.over_cap,
    }


def erased_cap(erased: Erased) -> Json:
    """A collection's own setting a cap command removed (`max` None: it was "no maximum")."""
    return {"collection": erased.collection, "max": erased.limit}


def over_cap(found: OverCap) -> Json:
    """A collection holding more units (not cancelled) than its cap."""
    return {"collection": found.collection, "ordered": found.ordered, "cap": found.cap}


def cap_done(done: CapDone) -> Json:
    """What `gateway cap set` or `cap clear` did (`--json`; the API's answer to `PUT caps` and `DELETE caps` adds
    the partner): the cap now in force in `collection` ("*": the assembly default) and where it comes from, the
    collections' own settings it erased, the collections it touched that are now over their cap, and the ATS it
    moved."""
    edit = done.edit
    return {
        "sku": edit.sku,
        "assembly": edit.assembly,
        "collection": edit.collection,
        "max": edit.cap.limit,
        "cap_source": edit.cap.source.value,
        "erased": [erased_cap(e) for e in edit.erased],
        "over_cap": [over_cap(o) for o in edit.over_cap],
        "ongoing": list(edit.ongoing),
        "ats_changes": [ats_change(c) for c in sorted(done.changes, key=lambda c: c.sku)],
    }


def collection(line: CollectionLine) -> Json:
    """One collection's dates: `gateway collection show --json`, `GET collections`. `opens_at` and `closes_at` are
    instants (None: that side of its window is open), `pickup_on` a date (None: its lines are demand today), and
    whether it takes orders now."""
    return {
        "assembly": line.assembly,
        "collection": line.collection,
        "opens_at": instant.to_iso(line.dates.opens_at),
        "closes_at": instant.to_iso(line.dates.closes_at),
        "pickup_on": None if line.dates.pickup_on is None else line.dates.pickup_on.isoformat(),
        "open_now": line.open_now,
    }


def collection_done(done: CollectionDone) -> Json:
    """What `gateway collection set` did (`--json`; the API's answer to `PUT collections` adds the partner): the
    collection's dates now, and whether it had dates before (`had_dates`)."""
    return collection(done.line) | {"had_dates": done.before is not None}


# orders


def order_line(line: LineView) -> Json:
    """One line of an order: whether it allocates under the partner's mode, its units and the rule (or, when it
    holds nothing, the rule that leaves it out); `inventory_at` is its SKU's inventory timestamp."""
    return {
        "sku": line.sku,
        "quantity": line.quantity,
        "assembly": line.assembly,
        "collection": line.collection,
        "confirmed_quantity": line.confirmed_quantity,
        "confirmed_at": instant.to_iso(line.confirmed_at),
        "inventory_at": instant.to_iso(line.inventory_at),
        "allocates": line.allocates,
        "units": line.units,
        "rule": line.rule,
    }


def moved_by(event: OrderEvent) -> str | None:
    """What moved an order: `ledger:N` (an inbound item's ledger entry), `command:cli` or `command:api`; None when
    unknown (the status an order had when the store began keeping histories)."""
    if event.ledger_id is not None:
        return f"ledger:{event.ledger_id}"
    if event.command is not None:
        return f"command:{event.command}"
    return None


def order_event(event: OrderEvent) -> Json:
    """A status an order reached, when, and what moved it (`by`; an inbound item's ledger entry and source)."""
    return {
        "status": event.status.value,
        "at": instant.to_iso(event.at),
        "by": moved_by(event),
        "ledger_entry": event.ledger_id,
        "source": event.source,
    }


def confirmation(found: ConfirmationRecord) -> Json:
    """A confirmation received for a line (`in_force` False: a later-stamped one had arrived before it)."""
    return {
        "sku": found.sku,
        "confirmed_quantity": found.confirmed_quantity,
        "confirmed_at": instant.to_iso(found.confirmed_at),
        "received_at": instant.to_iso(found.received_at),
        "in_force": found.in_force,
    }


def order_summary(view: OrderView) -> Json:
    """An order as listed (`updated_at`: when it reached its status; `allocated`: units its lines hold now):
    each entry of `gateway order list --json`, `GET orders`."""
    return {
        "order_id": view.order_id,
        "status": view.status.value,
        "created_at": instant.to_iso(view.created_at),
        "updated_at": instant.to_iso(view.updated_at),
        "allocated": view.allocated,
        "lines": [order_line(line) for line in view.lines],
    }


def order(found: OrderDetail) -> Json:
    """One order read whole, under the partner's `mode`: its lines, each status it reached (oldest first) and the
    confirmations received: `gateway order show --json`, `GET orders/{order_id}`."""
    return order_summary(found.order) | {
        "mode": found.mode,
        "history": [order_event(event) for event in found.history],
        "confirmations": [confirmation(c) for c in found.confirmations],
    }


# what came in


def ingest_report(result: IngestResult) -> Json:
    """What one file did (its report, every problem with its line), whether it was a dry run, and the ATS changes
    it made or would make, by SKU: `gateway ingest --json`."""
    body = result.report()
    body["dry_run"] = result.dry_run
    body["ats_changes"] = [ats_change(c) for c in sorted(result.changes, key=lambda c: c.sku)]
    return body


def bundle_report(result: BundleResult) -> Json:
    """What a bundle did: its report and ATS changes (only the values that moved over the whole bundle), and each
    member's report in order (a member's own changes are not published apart): `gateway ingest --bundle --json`."""
    body = ingest_report(result)
    body["members"] = [member.report() | {"dry_run": member.dry_run} for member in result.members]
    return body


def ledger_entry(entry: LedgerRecord) -> Json:
    """One inbound item and what became of it, with the warnings of its report: `gateway ledger --json`
    (`reapply_of`: the entry whose content it applied again on purpose; `run_id`: its log lines')."""
    shown = _fields(
        entry,
        "id",
        "kind",
        "source",
        "sha256",
        "size",
        "received_at",
        "outcome",
        "rows_applied",
        "rows_skipped",
        "rows_refused",
        "error",
        "reapply_of",
        "run_id",
    )
    return shown | {"warnings": _stored_warnings(entry.report)}


def warnings(found: Sequence[ItemWarning]) -> list[Json]:
    """What an item or a command applied (or kept a duplicate) but should be looked at, each `{"warning", "skus",
    "count", "message"}`, a `duplicate_of_older` with `duplicate_of` and `in_force` too (service/items.py
    ItemWarning, the one shape): `gateway ingest --json`, the ledger, `PUT stock/{sku}`."""
    return [warning.as_dict() for warning in found]


def _stored_warnings(report: str | None) -> list[Json]:
    """The warnings kept in a ledger entry's report (as `warnings` made them); none in an older report."""
    if report is None:
        return []
    kept = json.loads(report).get("warnings")
    return [dict(warning) for warning in kept] if isinstance(kept, list) else []


# what goes out


def outbox_count(count: OutboxCount) -> Json:
    """How many messages of one kind are in one state, the oldest and the next due."""
    return _fields(count, "kind", "state", "count", "oldest", "next_attempt_at")


def outbox_message(message: ListedMessage) -> Json:
    """One message of the outbox and why it is where it is."""
    record, why = message
    shown = _fields(
        record,
        "id",
        "kind",
        "key",
        "value",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_status",
        "last_error",
        "batch_id",
    )
    return shown | {"why": why}


def outbox(found: OutboxListing) -> Json:
    """A partner's outbox counts by kind and state, and the messages listed: `gateway outbox --json`."""
    return {
        "partner": found.summary.partner,
        "counts": [outbox_count(c) for c in found.summary.counts],
        "messages": [outbox_message(message) for message in found.messages],
    }


def ledger_tally(tally: LedgerTally) -> Json:
    """Items of one kind and outcome in a window, with the rows they applied and refused."""
    return _fields(tally, "kind", "outcome", "items", "rows_applied", "rows_refused")


def partner_status(found: PartnerStatus, now: Instant) -> Json:
    """One partner at a glance at `now`: the last hour's items, the outbox's depth and the age of its oldest
    message in seconds, the dead letters: an entry of `gateway status --json`."""
    oldest = found.outbox.oldest
    return {
        "partner": found.partner,
        "last_hour": [ledger_tally(tally) for tally in found.last_hour],
        "outbox_depth": found.outbox.depth,
        "oldest_undelivered_seconds": None if oldest is None else round((now - oldest) / 1e6, 1),
        "dead_letters": found.outbox.dead_letters,
    }
