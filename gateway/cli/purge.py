"""`gateway purge`: remove what `[retention]` no longer keeps (delivered outbox messages, old ledger entries, the
digests that outlived them, archived and failed files, kept-aside feed pages, kept copies of applied items), as
the worker does daily; for cron when no worker runs. Exit 0, 2 on a usage or configuration error."""

from __future__ import annotations

import json

import click

from gateway.cli.state import State
from gateway.cli.terminal import echo
from gateway.domain import instant
from gateway.service import purge as purge_service


@click.command("purge")
@click.option("--partner", help="Only this partner (default: every configured partner).")
@click.option("--dry-run", is_flag=True, help="Count what would be removed, per kind; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="A JSON object: per partner and kind, how many.")
@click.pass_obj
def purge(state: State, partner: str | None, dry_run: bool, as_json: bool) -> None:
    """Remove what [retention] no longer keeps (what `gateway run` does daily)."""
    with state.app(partner) as app:
        report = purge_service.purge(app.store, app.settings, app.clock(), partner=partner, dry_run=dry_run)
    if as_json:
        echo(
            json.dumps(
                {
                    "dry_run": report.dry_run,
                    "at": instant.to_iso(report.now),
                    "purged": [
                        {"partner": p.partner, "what": p.what, "count": p.count, "days": p.days} for p in report.purged
                    ],
                    "totals": report.totals(),
                }
            )
        )
        return
    verb = "would remove" if dry_run else "removed"
    echo(f"{'partner':<20} {'what':<8} {'kept days':>9} {verb:>12}")
    for p in report.purged:
        echo(f"{p.partner:<20} {p.what:<8} {p.days:>9} {p.count:>12}")
    totals = ", ".join(f"{what} {count}" for what, count in report.totals().items())
    echo(f"{'dry run: nothing removed; ' if dry_run else ''}{verb} in all: {totals}")
