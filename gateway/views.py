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
from gateway.service.outbox_view import LedgerTally, ListedMessage, OutboxListing, PartnerStatus
from gateway.service.queries import AllocatingLine, AtsView, Explanation
from gateway.store.records import CapRow, LedgerRecord, OutboxCount

Json = dict[str, object]


# ATS


def ats(view: AtsView) -> Json:
    """One SKU's ATS (`ats` the published value, never negative; `oversold` when the stock is below the
    allocation): `gateway ats --json`, `GET ats`."""
    return {
        "sku": view.sku,
        "stock": view.stock,
        "allocated": view.allocated,
        "ats": view.ats,
        "oversold": view.oversold,
        "as_of": instant.to_iso(view.as_of),
    }


def channel(view: ChannelView, *, explained: bool = False) -> Json:
    """What one collection of an assembly may still take of a SKU: `gateway ats --assembly A --collection C
    --json`, `GET ats?assembly=A&collection=C`. With `explained` (the command's `--explain`), where the cap comes
    from and the SKU's own ATS (published: never negative) too."""
    body: Json = {
        "sku": view.sku,
        "assembly": view.assembly,
        "collection": view.collection,
        "ats": view.ats,
        "cap": view.cap,
        "ordered": view.ordered,
    }
    if explained:
        body |= {"cap_source": view.source.value, "sku_ats": max(0, view.sku_ats)}
    return body


def allocating_line(line: AllocatingLine) -> Json:
    """A line that holds units of a SKU, and the rule that makes it count."""
    return {
        "order_id": line.order_id,
        "status": line.status,
        "quantity": line.quantity,
        "confirmed_quantity": line.confirmed_quantity,
        "units": line.units,
        "rule": line.rule,
    }


def explanation(found: Explanation) -> Json:
    """Why a SKU's ATS is what it is: `gateway ats --sku S --explain --json`, `GET ats/{sku}/explain`.

    `set_by_ledger_entry` is the ledger entry of the snapshot that set the level (None when a command set it, or
    nothing did); `non_allocating_lines` counts the open or closed lines that hold nothing."""
    view = found.view
    return {
        "sku": view.sku,
        "mode": found.mode,
        "stock": view.stock,
        "as_of": instant.to_iso(view.as_of),
        "allocated": view.allocated,
        "ats": view.ats,
        "set_by_ledger_entry": found.set_by,
        "lines": [allocating_line(line) for line in found.lines],
        "non_allocating_lines": found.non_allocating,
    }


def ats_change(change: AtsChange) -> Json:
    """A published ATS value that moved (`before` None: never published): a command's answer in the API, each
    change of `gateway ingest --json`."""
    return {"sku": change.sku, "before": change.before, "after": change.after}


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
    return {
        "id": entry.id,
        "kind": entry.kind,
        "source": entry.source,
        "sha256": entry.sha256,
        "size": entry.size,
        "received_at": instant.to_iso(entry.received_at),
        "outcome": entry.outcome,
        "rows_applied": entry.rows_applied,
        "rows_skipped": entry.rows_skipped,
        "rows_refused": entry.rows_refused,
        "error": entry.error,
        "reapply_of": entry.reapply_of,
        "warnings": warnings,
    }


# what goes out


def outbox_count(count: OutboxCount) -> Json:
    """How many messages of one kind are in one state, the oldest and the next due."""
    return {
        "kind": count.kind,
        "state": count.state,
        "count": count.count,
        "oldest": instant.to_iso(count.oldest),
        "next_attempt_at": instant.to_iso(count.next_attempt_at),
    }


def outbox_message(message: ListedMessage) -> Json:
    """One message of the outbox and why it is where it is."""
    record, why = message
    return {
        "id": record.id,
        "kind": record.kind,
        "key": record.key,
        "value": record.value,
        "state": record.state,
        "attempts": record.attempts,
        "created_at": instant.to_iso(record.created_at),
        "next_attempt_at": instant.to_iso(record.next_attempt_at),
        "last_status": record.last_status,
        "last_error": record.last_error,
        "batch_id": record.batch_id,
        "why": why,
    }


def outbox(found: OutboxListing) -> Json:
    """A partner's outbox counts by kind and state, and the messages listed: `gateway outbox --json`."""
    return {
        "partner": found.summary.partner,
        "counts": [outbox_count(c) for c in found.summary.counts],
        "messages": [outbox_message(message) for message in found.messages],
    }


def ledger_tally(tally: LedgerTally) -> Json:
    """Items of one kind and outcome in a window, with the rows they applied and refused."""
    return {
        "kind": tally.kind,
        "outcome": tally.outcome,
        "items": tally.items,
        "rows_applied": tally.rows_applied,
        "rows_refused": tally.rows_refused,
    }


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
