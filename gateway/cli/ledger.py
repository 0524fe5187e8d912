"""`gateway ledger`: what was received and what became of it; `gateway ledger release` puts a quarantined file
back in line. Exit codes as for every command: 0 success, 1 refused, 2 usage or configuration error."""

from __future__ import annotations

import json

import click

from gateway import views
from gateway.cli.errors import Refused
from gateway.cli.state import State, listed_partner
from gateway.cli.terminal import echo
from gateway.domain import instant
from gateway.service import ledger as ledger_service


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
        echo(f"{e.id:>6}  {received:<27} {e.kind:<13} {e.outcome:<11} {counts}  {e.source}")


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
