"""What the store gives back names message kinds, outbox states and item outcomes by their enumeration members;
what it holds, and what the JSON views print, is the plain word."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from gateway import views
from gateway.domain.messages import MessageKind, OutboxState
from gateway.domain.orders import RequestedLine
from gateway.domain.outcomes import Outcome
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service import outbox_view
from gateway.store import schema
from tests.conftest import FIXTURES, AppFactory, FakeClock

pytestmark = pytest.mark.both_stores

SECOND = 1_000_000


def test_outbox_records_counts_and_claims_carry_the_members(make_app: AppFactory, clock: FakeClock) -> None:
    """Rows, counts, the kinds waiting and a claimed batch read back as MessageKind and OutboxState members."""
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock("p", "A", 5, None)
    app.commands.place("p", "o-1", [RequestedLine("A", 2)])
    app.commands.set_status("p", "o-1", OrderStatus.INVOICING)
    with app.store.read() as tx:
        partner_id = tx.partners.id_of("p")
        rows = tx.outbox.rows(partner_id)
        counts = tx.outbox.counts(partner_id)
        waiting = tx.outbox.pending_kinds(partner_id)
    assert {(type(r.kind), type(r.state)) for r in rows} == {(MessageKind, OutboxState)}
    assert {r.kind for r in rows} == {MessageKind.ATS, MessageKind.ORDER_EXPORT}
    assert {(type(c.kind), type(c.state)) for c in counts} == {(MessageKind, OutboxState)}
    assert waiting == {MessageKind.ATS, MessageKind.ORDER_EXPORT}
    assert {type(kind) for kind in waiting} == {MessageKind}

    with app.store.write() as tx:
        claim = tx.outbox.claim(partner_id, MessageKind.ORDER_EXPORT, clock(), 10, clock() + 60 * SECOND, "b-1")
        assert claim is not None
        assert claim.kind is MessageKind.ORDER_EXPORT
        assert [(m.kind, m.state) for m in claim.messages] == [(MessageKind.ORDER_EXPORT, OutboxState.PENDING)]
        assert all(type(m.kind) is MessageKind and type(m.state) is OutboxState for m in claim.messages)
        tx.outbox.settle_delivered(claim, 200, clock())
    with app.store.read() as tx:
        [delivered] = tx.outbox.rows(partner_id, OutboxState.DELIVERED)
        stored = tx.connection.execute(select(schema.outbox.c.kind, schema.outbox.c.state)).all()
    assert delivered.state is OutboxState.DELIVERED
    # the store holds the words themselves
    assert {(type(kind), type(state)) for kind, state in stored} == {(str, str)}
    assert ("order_export", "delivered") in set(stored)


def test_the_outbox_view_prints_the_words(make_app: AppFactory, clock: FakeClock) -> None:
    """`gateway outbox --json` shows kinds and states as before they were enumerations."""
    app = make_app(p={"stock_mode": "simple"})
    app.commands.set_stock("p", "A", 5, None)
    listing = outbox_view.listing(app.store, "p", app.settings.partner("p"), dead=False, limit=10, now=clock())
    shown = json.loads(json.dumps(views.outbox(listing)))
    assert shown["counts"][0] | {"oldest": None} == {
        "kind": "ats",
        "state": "pending",
        "count": 1,
        "oldest": None,
        "next_attempt_at": None,
    }
    assert (shown["messages"][0]["kind"], shown["messages"][0]["state"]) == ("ats", "pending")


def test_ledger_entries_and_tallies_carry_the_outcome_members(make_app: AppFactory, clock: FakeClock) -> None:
    """A ledger entry's outcome and the status tallies read back as Outcome members, and print as their words."""
    app = make_app(p={"stock_mode": "simple"})
    good = FIXTURES / "stock" / "good.csv"
    assert app.ingestor.ingest("p", Kind.STOCK, good).outcome is Outcome.APPLIED
    assert app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "bad_quantity.csv").outcome is Outcome.REJECTED
    with app.store.read() as tx:
        entries = tx.ledger.entries(tx.partners.id_of("p"))
    assert [e.outcome for e in entries] == [Outcome.REJECTED, Outcome.APPLIED]
    assert all(type(e.outcome) is Outcome for e in entries)
    assert [views.ledger_entry(e)["outcome"] for e in entries] == ["rejected", "applied"]
    [status] = outbox_view.partner_status(app.store, ["p"], clock())
    assert {(t.kind, t.outcome) for t in status.last_hour} == {("stock", Outcome.APPLIED), ("stock", Outcome.REJECTED)}
    assert all(type(t.outcome) is Outcome for t in status.last_hour)
