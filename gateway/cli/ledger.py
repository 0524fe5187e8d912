"""`gateway ledger`: what was received and what became of it; `gateway ledger release` puts a quarantined file
back in line; `gateway ledger reapply` applies an entry's content again on purpose. Exit codes as for every
command: 0 success, 1 refused, 2 usage or configuration error."""

from __future__ import annotations

import json

import click

from gateway import views
from gateway.cli.errors import Refused
from gateway.cli.state import State, listed_partner
from gateway.cli.terminal import echo
from gateway.domain import instant
from gateway.service import ledger as ledger_service
from gateway.service.retention import NotKept


@click.group(invoke_without_command=True)
@click.option("--partner", help="The partner (required without a sub-command).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of ledger entries, newest first.")
@click.pass_context
def ledger(ctx: click.Context, partner: str | None, limit: int, as_json: bool) -> None:
    """What was received and what became of it: applied, duplicate, rejected, quarantined, released."""
    partner = listed_partner(ctx, partner)
    if partner is None:
        return
    state: State = ctx.obj
    with state.app(partner) as app:
        entries = ledger_service.entries(app.store, partner, limit)
    if as_json:
        echo(json.dumps([views.ledger_entry(e) for e in entries]))
        return
    echo(f"{'id':>6}  {'received_at':<27} {'kind':<13} {'outcome':<11} {'applied':>8} {'refused':>8}  source")
    for e in entries:
        received = instant.to_iso(e.received_at) or "-"
        counts = f"{e.rows_applied:>8} {e.rows_refused:>8}"
        note = f"  (re-applies {e.reapply_of})" if e.reapply_of is not None else ""
        echo(f"{e.id:>6}  {received:<27} {e.kind:<13} {e.outcome:<11} {counts}  {e.source}{note}")


@ledger.command("release")
@click.option("--partner", required=True)
@click.option("--id", "ledger_id", required=True, type=int, help="The ledger entry of the quarantined file.")
@click.pass_obj
def release(state: State, partner: str, ledger_id: int) -> None:
    """Put a quarantined file back in line: its failures are forgotten and the next pass takes it again."""
    with state.app(partner) as app:
        released = ledger_service.release(app.store, partner, ledger_id, app.clock())
    if not released:
        raise Refused(f"ledger entry {ledger_id} is not a quarantined file of {partner}")
    echo(f"{partner}: ledger entry {ledger_id} released; the next pass takes the file again")


@ledger.command("reapply")
@click.option("--partner", required=True)
@click.option("--id", "ledger_id", required=True, type=int, help="The ledger entry whose content to apply again.")
@click.option("--dry-run", is_flag=True, help="Show the ATS changes it would make; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the new item's report as JSON.")
@click.pass_obj
def reapply(state: State, partner: str, ledger_id: int, dry_run: bool, as_json: bool) -> None:
    """Apply again, on purpose, the content of an applied ledger entry (from the copy kept for
    retention.items_days), as a new item whose ledger entry names the first. Exit 1 when no copy is kept."""
    from gateway.cli.ingest import report_ingest  # noqa: PLC0415 - the ingest's modules, for reapply alone

    with state.app(partner) as app:
        try:
            result = app.ingestor.reapply(partner, ledger_id, dry_run=dry_run)
        except NotKept as exc:
            raise Refused(str(exc)) from exc
    raise click.exceptions.Exit(report_ingest(result, as_json))
