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

from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.service.channels import ChannelView
from gateway.service.engine import AtsChange
from gateway.service.items import IngestResult
from gateway.service.outbox_view import ListedMessage, OutboxListing, PartnerStatus
from gateway.service.queries import AllocatingLine, AtsView, Explanation
from gateway.store.records import CapRow, LedgerRecord, LedgerTally, OutboxCount

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
    nothing did); `non_allocating_lines` counts the open or closed lines that hold nothing."""
    view = found.view
    return {
        "sku": view.sku,
        "mode": found.mode,
        **_fields(view, "stock", "as_of", "allocated", "ats"),
        "set_by_ledger_entry": found.set_by,
        "lines": [allocating_line(line) for line in found.lines],
        "non_allocating_lines": found.non_allocating,
    }


def ats_change(change: AtsChange) -> Json:
    """A published ATS value that moved (`before` None: never published): a command's answer in the API, each
    change of `gateway ingest --json`."""
    return _fields(change, "sku", "before", "after")


def cap(row: CapRow) -> Json:
    """One cap setting (`collection` "*": the assembly default; `max` None: no maximum), as `PUT caps` takes it:
    `gateway cap show --json`."""
    return {"sku": row.sku, "assembly": row.assembly, "collection": row.collection, "max": row.max_units}


# what came in


def ingest_report(result: IngestResult) -> Json:
    """What one file did (its report, every problem with its line), whether it was a dry run, and the ATS changes
    it made or would make, by SKU: `gateway ingest --json`."""
    body = result.report()
    body["dry_run"] = result.dry_run
    body["ats_changes"] = [ats_change(c) for c in sorted(result.changes, key=lambda c: c.sku)]
    return body


def ledger_entry(entry: LedgerRecord) -> Json:
    """One inbound item and what became of it: `gateway ledger --json`. `reapply_of` names the entry whose content
    it applied again on purpose; `warnings` are its report's (a duplicate of older content: `duplicate_of_older`)."""
    report = json.loads(entry.report) if entry.report else {}
    warnings = report.get("warnings", []) if isinstance(report, dict) else []
    fields = _fields(
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
    )
    return fields | {"warnings": warnings}


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
