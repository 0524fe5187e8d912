"""Retention (gateway/service/purge.py): a store aged with the injected clock is purged to the expected counts per
kind, a dry run counts the same and removes nothing, `partner` limits a run to one partner; what is still needed
survives (undelivered and dead messages, a quarantined file's entry, a row another transaction holds); applied
content stays a duplicate past its ledger entry until `dedupe_days`. Both stores, real files."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy
import structlog
from sqlalchemy import func, select

from gateway import bootstrap
from gateway.domain.messages import MessageKind, OutboxState
from gateway.domain.orders import RequestedLine
from gateway.domain.outcomes import Outcome
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.logs import configure
from gateway.service import dead_letters, ledger, purge
from gateway.settings import Settings
from gateway.store import schema
from gateway.store.records import BatchFailure, Inbound
from tests.conftest import AppFactory, FakeClock

DAY = 86_400.0
PARTNERS = ("acme", "other")
# what the aged store of `aged` holds of each kind, older than the defaults, for each partner, on day 100
AGED = {"outbox": 1, "ledger": 4, "dedupe": 0, "files": 0, "pages": 0, "items": 2}


@pytest.fixture(autouse=True)
def _every_level() -> None:
    """Info events reach structlog's capture_logs (the suite's default lets errors only through)."""
    configure("json", None, "debug")


def csv(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def settle(app: bootstrap.App, partner: str, *, dead: bool = False) -> None:
    """Claim the partner's due ATS messages and settle them delivered (or dead), as a delivery pass would."""
    now = app.clock()
    with app.store.write() as tx:
        claim = tx.outbox.claim(tx.partners.id_of(partner), MessageKind.ATS, now, 100, now + 60_000_000, "b")
        assert claim is not None
        if dead:
            tx.outbox.settle_dead(claim, BatchFailure(1, 422, "refused"))
        else:
            tx.outbox.settle_delivered(claim, 200, now)


def aged(app: bootstrap.App, tmp_path: Path, clock: FakeClock, partner: str) -> int:
    """Day 0: a delivered ATS value, a dead one, an order export never delivered; ledger entries applied (2),
    rejected, duplicate and quarantined, the applied ones' kept copies. Day 95: one more applied and delivered.
    Returns the quarantined entry's id."""
    folder = tmp_path / partner
    folder.mkdir()
    assert app.ingestor.ingest(partner, Kind.STOCK, csv(folder, "a.csv", "sku,quantity\nA,10\n")).outcome == "applied"
    app.commands.place(partner, "O-1", [RequestedLine("A", 1)])
    app.commands.set_status(partner, "O-1", OrderStatus.INVOICING)  # an order export, never delivered
    settle(app, partner)
    assert app.ingestor.ingest(partner, Kind.STOCK, csv(folder, "b.csv", "sku,quantity\nB,5\n")).outcome == "applied"
    settle(app, partner, dead=True)
    bad = csv(folder, "bad.csv", "nothing,useful\n1,2\n")
    assert app.ingestor.ingest(partner, Kind.STOCK, bad).outcome == "rejected"
    assert app.ingestor.ingest(partner, Kind.STOCK, folder / "a.csv").outcome == "duplicate"
    now = app.clock()
    with app.store.write() as tx:
        partner_id = tx.partners.id_of(partner)
        tx.ledger.transport_failed(partner_id, "in", "stuck.csv|1|1", "cut", now)
        quarantined = ledger.quarantined(tx, partner_id, "stock", "stuck.csv", 1, now, "kept failing")
        tx.ledger.quarantine(partner_id, "in", "stuck.csv|1|1", now, quarantined)
    clock.advance(95 * DAY)
    assert app.ingestor.ingest(partner, Kind.STOCK, csv(folder, "d.csv", "sku,quantity\nD,1\n")).outcome == "applied"
    settle(app, partner)
    clock.advance(-95 * DAY)
    return quarantined


def counts(app: bootstrap.App, table: sqlalchemy.Table, partner: str) -> int:
    with app.store.read() as tx:
        partner_id = tx.partners.id_of(partner)
        query = select(func.count()).select_from(table).where(table.c.partner_id == partner_id)
        return int(tx.connection.execute(query).scalar_one())


def states(app: bootstrap.App, partner: str) -> list[tuple[str, str]]:
    """(kind, state) of the partner's outbox messages, sorted."""
    with app.store.read() as tx:
        return sorted((r.kind.value, r.state.value) for r in tx.outbox.rows(tx.partners.id_of(partner), None))


def by_partner(report: purge.PurgeReport) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for item in report.purged:
        found.setdefault(item.partner, {})[item.what] = item.count
    return found


def small_batches(app: bootstrap.App) -> Settings:
    """The app's settings with two rows a batch: every kind takes several batches."""
    return app.settings.model_copy(update={"retention": app.settings.retention.model_copy(update={"batch_size": 2})})


@pytest.mark.both_stores
def test_an_aged_store_is_purged_to_the_expected_counts_a_dry_run_removes_nothing_and_partner_limits_the_run(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """On day 100, by the defaults: per partner 1 delivered message, 4 ledger entries and 2 kept copies go, in
    batches of 2; the dry run counts exactly that and removes nothing; `partner` touches one partner only. The
    pending and dead messages, the day-95 entry and delivery, and the quarantined file's entry stay."""
    app = make_app(**{p: {"stock_mode": "advanced"} for p in PARTNERS})
    quarantined = {p: aged(app, tmp_path, clock, p) for p in PARTNERS}
    config = small_batches(app)
    clock.advance(100 * DAY)
    before = {p: (states(app, p), counts(app, schema.ingest_ledger, p)) for p in PARTNERS}

    dry = purge.purge(app.store, config, clock(), dry_run=True, pause=0)
    assert by_partner(dry) == {p: AGED for p in PARTNERS}
    assert {p: (states(app, p), counts(app, schema.ingest_ledger, p)) for p in PARTNERS} == before

    with structlog.testing.capture_logs() as captured:
        done = purge.purge(app.store, config, clock(), partner="acme", pause=0)
    assert by_partner(done) == {"acme": AGED}
    assert [(e["partner"], e["what"], e["count"]) for e in captured if e["event"] == "retention_purged"] == [
        ("acme", what, count) for what, count in AGED.items()
    ]
    assert states(app, "acme") == [("ats", "dead"), ("ats", "delivered"), ("order_export", "pending")]
    assert counts(app, schema.ingest_ledger, "acme") == 2  # the quarantined file's and day 95's
    assert counts(app, schema.ledger_digests, "acme") == 2  # A and B's content, applied on day 0
    assert (states(app, "other"), counts(app, schema.ingest_ledger, "other")) == before["other"]
    assert by_partner(purge.purge(app.store, config, clock(), dry_run=True, pause=0))["acme"] == dict.fromkeys(AGED, 0)

    assert ledger.release(app.store, "acme", quarantined["acme"], clock())  # released: it ages out as any entry
    assert by_partner(purge.purge(app.store, config, clock(), pause=0)) == {
        "acme": dict.fromkeys(AGED, 0) | {"ledger": 1},
        "other": AGED,
    }


@pytest.mark.both_stores
def test_a_duplicate_older_than_the_ledger_retention_is_recognised_until_the_dedupe_retention(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """W1=10 then W1=5 on day 0, their entries purged on day 100: W1=10 again is still a duplicate naming entry 1,
    older than entry 2 in force (from the digests); on day 366 the digests go and W1=10 applies again."""
    app = make_app(acme={"stock_mode": "advanced"})
    ten = csv(tmp_path, "w1-10.csv", "sku,quantity\nW1,10\n")
    first = app.ingestor.ingest("acme", Kind.STOCK, ten)
    clock.advance(60)
    second = app.ingestor.ingest("acme", Kind.STOCK, csv(tmp_path, "w1-5.csv", "sku,quantity\nW1,5\n"))
    clock.advance(100 * DAY)
    assert by_partner(purge.purge(app.store, app.settings, clock(), pause=0))["acme"]["ledger"] == 2
    assert counts(app, schema.ingest_ledger, "acme") == 0

    again = app.ingestor.ingest("acme", Kind.STOCK, csv(tmp_path, "resent.csv", "sku,quantity\nW1,10\n"))
    assert (again.outcome, again.duplicate_of, again.in_force) == ("duplicate", first.ledger_id, second.ledger_id)
    assert f"duplicate of ledger entry {first.ledger_id}" in again.summary()
    with app.store.read() as tx:
        assert tx.stock.get(tx.partners.id_of("acme"), ["W1"])["W1"].quantity == 5

    clock.advance(266 * DAY)  # day 366: a year and a day after the first two
    assert by_partner(purge.purge(app.store, app.settings, clock(), pause=0))["acme"]["dedupe"] == 2
    applied = app.ingestor.ingest("acme", Kind.STOCK, csv(tmp_path, "resent-again.csv", "sku,quantity\nW1,10\n"))
    assert (applied.outcome, applied.duplicate_of) == ("applied", None)
    with app.store.read() as tx:
        assert tx.stock.get(tx.partners.id_of("acme"), ["W1"])["W1"].quantity == 10


@pytest.mark.parametrize("store_backend", ["postgresql"], indirect=True)
def test_a_delivered_message_another_transaction_holds_is_left_for_the_next_run(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock, store_url: str
) -> None:
    """PostgreSQL: an old delivered message locked by another transaction is skipped, never waited for; the next
    run removes it."""
    app = make_app(acme={"stock_mode": "advanced"})
    app.ingestor.ingest("acme", Kind.STOCK, csv(tmp_path, "a.csv", "sku,quantity\nA,10\nB,3\n"))
    settle(app, "acme")
    clock.advance(8 * DAY)
    other = sqlalchemy.create_engine(store_url, poolclass=sqlalchemy.pool.NullPool)
    done: list[purge.PurgeReport] = []
    try:
        with other.connect() as holder:
            holder.exec_driver_sql("SELECT id FROM outbox WHERE key = 'A' FOR UPDATE")
            run = threading.Thread(target=lambda: done.append(purge.purge(app.store, app.settings, clock(), pause=0)))
            run.start()
            run.join(10)
            assert not run.is_alive(), "the purge waits for the row another transaction holds"
            holder.rollback()
    finally:
        other.dispose()
    [first] = done
    assert by_partner(first)["acme"]["outbox"] == 1
    assert states(app, "acme") == [("ats", "delivered")]
    assert by_partner(purge.purge(app.store, app.settings, clock(), pause=0))["acme"]["outbox"] == 1
    assert states(app, "acme") == []


def test_archived_failed_files_kept_pages_and_copies_go_after_their_days_counted_from_the_move(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """31 days on: the files folder sources moved to archive/ and failed/ (reports too) and the pages kept aside
    go; a file moved there 21 days ago, what waits in the drop folder, and the folder of a source mounted on
    another worker stay. A file's sender's old modification time does not count: the move does."""
    app = make_app(
        acme={
            "stock_mode": "advanced",
            "sources": [
                {"type": "folder", "kind": "stock", "path": "drop"},
                {"type": "folder", "kind": "stock", "path": "mounted-elsewhere", "workers": ["elsewhere"]},
            ],
            "api": {"base_url": "http://127.0.0.1:9", "failed": "var/api-failed"},
        }
    )
    drop, elsewhere, pages = tmp_path / "drop", tmp_path / "mounted-elsewhere", tmp_path / "var" / "api-failed" / "acme"
    for folder in (drop / "archive", drop / "failed", elsewhere / "archive", pages):
        folder.mkdir(parents=True)
    moved = [
        drop / "archive" / "old.csv",
        drop / "archive" / "old.csv.error.json",
        drop / "failed" / "bad.csv",
        drop / "failed" / "bad.csv.error.json",
    ]
    kept_aside = [
        pages / "stock-20260101T000000000000Z-abc.json",
        pages / "stock-20260101T000000000000Z-abc.json.error.json",
    ]
    staying = [drop / "archive" / "recent.csv", drop / "waiting.csv", elsewhere / "archive" / "old.csv"]
    for path in [*moved, *kept_aside, *staying]:
        path.write_text("sku,quantity\nA,1\n", encoding="utf-8")
    sent_long_ago = time.time() - 400 * DAY
    os.utime(drop / "archive" / "old.csv", (sent_long_ago, sent_long_ago))  # sent long ago, moved just now
    recent = time.time() + 10 * DAY  # moved 21 days before the clock's now below
    os.utime(drop / "archive" / "recent.csv", (recent, recent))
    clock.now = int((time.time() + 20 * DAY) * 1_000_000)
    assert by_partner(purge.purge(app.store, app.settings, clock(), pause=0))["acme"]["files"] == 0
    clock.now = int((time.time() + 31 * DAY) * 1_000_000)

    dry = purge.purge(app.store, app.settings, clock(), dry_run=True, pause=0)
    assert (by_partner(dry)["acme"]["files"], by_partner(dry)["acme"]["pages"]) == (4, 2)
    assert all(path.exists() for path in [*moved, *kept_aside])
    done = purge.purge(app.store, app.settings, clock(), pause=0)
    assert (by_partner(done)["acme"]["files"], by_partner(done)["acme"]["pages"]) == (4, 2)
    assert [path for path in [*moved, *kept_aside] if path.exists()] == []
    assert all(path.exists() for path in staying)
    with app.store.read() as tx:  # the store's rows are untouched by a file's purge
        assert tx.outbox.rows(tx.partners.id_of("acme"), OutboxState.PENDING) == []


@pytest.mark.both_stores
def test_a_delivered_value_newer_than_a_dead_letter_stays_until_the_dead_letter_is_settled(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """A=10 goes dead, A=3 is delivered after it: past outbox_days the delivered 3 is kept while the dead 10 waits,
    so retrying the dead letter supersedes it instead of sending the old 10 over the 3; once settled, it goes."""
    app = make_app(acme={"stock_mode": "advanced"})
    assert app.ingestor.ingest("acme", Kind.STOCK, csv(tmp_path, "a.csv", "sku,quantity\nA,10\n")).outcome == "applied"
    settle(app, "acme", dead=True)
    clock.advance(60)
    assert app.ingestor.ingest("acme", Kind.STOCK, csv(tmp_path, "b.csv", "sku,quantity\nA,3\n")).outcome == "applied"
    settle(app, "acme")
    clock.advance(8 * DAY)
    kept = purge.purge(app.store, app.settings, clock(), pause=0)
    assert kept.totals()["outbox"] == 0
    retried = dead_letters.retry(app.store, "acme", None, clock())
    assert (retried.revived, retried.superseded) == (0, 1)
    assert purge.purge(app.store, app.settings, clock(), pause=0).totals()["outbox"] == 1


@pytest.mark.both_stores
def test_content_claimed_twice_is_a_duplicate_for_dedupe_days_from_its_latest_claim(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """The same member content claimed by two bundles, on day 0 and day 200: once both entries are purged, the
    digest kept names the later entry and dates from day 200, so it lasts until day 565, not 365."""
    app = make_app(acme={"stock_mode": "advanced"})
    digest = "ab" * 32
    entries = []
    for day in (0, 200):
        with app.store.write() as tx:
            inbound = Inbound(tx.partners.id_of("acme"), "stock", f"bundle-{day}:m.csv", digest, 9, clock())
            entries.append(tx.ledger.open(inbound, Outcome.BUNDLED))
        clock.advance(200 * DAY)
    clock.advance(-200 * DAY + 91 * DAY)  # day 291: both past ledger_days
    assert by_partner(purge.purge(app.store, app.settings, clock(), pause=0))["acme"]["ledger"] == 2
    with app.store.read() as tx:
        assert tx.ledger.applied(tx.partners.id_of("acme"), "stock", digest, Outcome.BUNDLED) == entries[1]
    clock.advance(300 * DAY)  # day 591: past dedupe_days of the later claim too
    assert by_partner(purge.purge(app.store, app.settings, clock(), pause=0))["acme"]["dedupe"] == 1
