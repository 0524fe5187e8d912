"""`gateway outbox`: what waits for delivery to a partner and why, its dead letters, and putting them back in
line (`gateway outbox retry`)."""

from __future__ import annotations

import json

import click

from gateway import views
from gateway.cli.errors import Failed
from gateway.cli.state import State, listed_partner
from gateway.cli.terminal import echo
from gateway.domain import instant
from gateway.service import dead_letters, outbox_view


@click.group(invoke_without_command=True)
@click.option("--partner", help="The partner (required without a sub-command).")
@click.option("--dead", is_flag=True, help="Dead letters instead of what is waiting.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Messages listed.")
@click.option("--json", "as_json", is_flag=True, help="A JSON object: counts by kind and state, and the messages.")
@click.pass_context
def outbox(ctx: click.Context, partner: str | None, dead: bool, limit: int, as_json: bool) -> None:
    """What waits for delivery to the partner and why (or, with --dead, what was given up on and why)."""
    partner = listed_partner(ctx, partner)
    if partner is None:
        return
    state: State = ctx.obj
    with state.app(partner) as app:
        found = outbox_view.listing(
            app.store, partner, app.settings.partner(partner), dead=dead, limit=limit, now=app.clock()
        )
    if as_json:
        echo(json.dumps(views.outbox(found)))
        return
    if not found.summary.counts:
        echo(f"{partner}: the outbox is empty")
    for c in found.summary.counts:
        echo(f"{c.kind:<13} {c.state:<11} {c.count:>8}  oldest {instant.to_iso(c.oldest)}")
    if found.messages:
        echo("")
        echo(f"{'id':>8}  {'kind':<13} {'key':<30} {'value':>8}  why")
    for record, why in found.messages:
        value = "" if record.value is None else str(record.value)
        echo(f"{record.id:>8}  {record.kind:<13} {record.key[:30]:<30} {value:>8}  {why}")


@outbox.command("retry")
@click.option("--partner", required=True)
@click.option("--id", "ids", multiple=True, type=int, help="A dead message's id (repeatable).")
@click.option("--all-dead", is_flag=True, help="Every dead message of the partner.")
@click.pass_obj
def outbox_retry(state: State, partner: str, ids: tuple[int, ...], all_dead: bool) -> None:
    """Put dead messages back in the queue, due now (a value superseded by a newer one of its key is not)."""
    if bool(ids) == all_dead:
        raise click.UsageError("give --id N (repeatable) or --all-dead")
    with state.app(partner) as app:
        done = dead_letters.retry(app.store, partner, None if all_dead else ids, app.clock())
    echo(f"{partner}: {done.revived} message(s) queued again; {done.superseded} superseded by a newer value")
    if done.missed(ids):
        raise Failed("gateway: some ids are not dead messages of this partner")
