"""A file (or a feed page) whose apply fails in the store, on PostgreSQL for real: a trigger the test adds refuses
one SKU with an error of its own, as a full disk or a value out of a column's range would.

The failing item rolls back alone and counts as a failure of that file; the rest of the pass and the partner's
other sources go on; quarantine comes only after `max_transport_failures` failures spanning
`quarantine_after_seconds`, and `gateway ledger release` puts the file back in line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from click.testing import CliRunner, Result

from gateway import bootstrap
from gateway.cli import cli
from gateway.logs import configure
from gateway.settings import FolderSource
from gateway.store.port import LedgerRecord
from gateway.store.sql import SqlStore
from tests.conftest import AppFactory, FakeClock
from tests.integration.helpers import contents
from tests.support.partner import FakePartner

P = "p"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, for modification times
TOKEN_ENV = "PICKUP_FAILURES_TEST_TOKEN"  # noqa: S105 - the name of a variable, not a secret
Events = list[dict[str, Any]]

# a store error of PostgreSQL's own on one SKU, with a DETAIL naming the server process (which must not be shown)
POISON = """
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.sku = 'POISON' THEN
        RAISE EXCEPTION USING MESSAGE = 'poisoned SKU ' || NEW.sku,
            DETAIL = 'refused by server process ' || pg_backend_pid();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON stock FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""

on_postgres = pytest.mark.parametrize("store_backend", ["postgresql"], indirect=True)


@pytest.fixture
def events() -> Iterator[Events]:
    """The structlog events of the test, every level."""
    configure("json", None, "debug")
    with structlog.testing.capture_logs() as captured:
        yield captured


def poison(app: bootstrap.App) -> None:
    with app.store.engine.begin() as connection:
        connection.exec_driver_sql(POISON)


def cure(app: bootstrap.App) -> None:
    with app.store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER poison ON stock")


def drop(folder: Path, name: str, levels: dict[str, int], mtime: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("sku,quantity\n" + "".join(f"{s},{q}\n" for s, q in levels.items()))
    os.utime(folder / name, (mtime, mtime))


def stocked(app: bootstrap.App) -> dict[str, int]:
    with app.store.read() as tx:
        return {record.sku: record.quantity for record in tx.stock.iterate(tx.partners.id_of(P))}


def ledger(app: bootstrap.App) -> list[LedgerRecord]:
    """Oldest first."""
    with app.store.read() as tx:
        return list(reversed(tx.ledger.entries(tx.partners.id_of(P))))


def sources(app: bootstrap.App) -> list[FolderSource]:
    found = list(app.settings.partner(P).sources)
    assert all(isinstance(source, FolderSource) for source in found)
    return found  # type: ignore[return-value]


def gateway(config: Path, *args: str) -> Result:
    """`gateway --config CONFIG ARGS...` in this process; the test's quiet logging is restored afterwards."""
    try:
        return CliRunner().invoke(cli, ["--config", str(config), "--log-level", "error", *args])
    finally:
        configure("json", None, "error")


@on_postgres
def test_a_store_error_on_one_file_is_its_own_failure_quarantined_only_over_time_and_released_by_the_cli(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock, events: Events
) -> None:
    """The poisoned file fails alone (logged with PostgreSQL's message, no DETAIL) while the files after it and
    the partner's other source are applied; quarantined at the third failure, once a minute has passed, not
    before; `gateway ledger release` puts it back and the next pass takes it."""
    options = {"max_transport_failures": 2, "quarantine_after_seconds": 60}
    app = make_app(
        p={
            "stock_mode": "simple",
            "sources": [
                {"name": "stock-in", "type": "folder", "kind": "stock", "path": "drop"} | options,
                {"name": "stock-b", "type": "folder", "kind": "stock", "path": "drop-b"},
            ],
        }
    )
    poison(app)
    stock_in, stock_b = sources(app)
    drop(tmp_path / "drop", "1-poisoned.csv", {"POISON": 1, "OTHER": 9}, T0)
    drop(tmp_path / "drop", "2-good.csv", {"A": 2}, T0 + 1)
    drop(tmp_path / "drop", "3-good.csv", {"B": 3}, T0 + 2)
    drop(tmp_path / "drop-b", "b.csv", {"C": 4}, T0)

    first = app.pickup.poll(P, stock_in)
    assert [(p.file, p.outcome) for p in first] == [
        ("1-poisoned.csv", "transport_error"),
        ("2-good.csv", "applied"),
        ("3-good.csv", "applied"),
    ]
    assert [(p.file, p.outcome) for p in app.pickup.poll(P, stock_b)] == [("b.csv", "applied")]
    assert stocked(app) == {"A": 2, "B": 3, "C": 4}  # nothing of the poisoned file, not even OTHER
    [failed] = [e for e in events if e["event"] == "item_store_failed"]
    assert failed["file"] == "1-poisoned.csv"
    assert "poisoned SKU POISON" in failed["error"]
    assert "DETAIL" not in failed["error"]
    assert "process" not in failed["error"]
    assert "poisoned SKU POISON" in first[0].detail
    assert sorted(os.listdir(tmp_path / "drop")) == ["1-poisoned.csv", "archive"]
    assert not (tmp_path / "drop" / "failed").exists()

    clock.advance(30)  # a second failure, but within the minute: not quarantined
    assert [p.outcome for p in app.pickup.poll(P, stock_in)] == ["transport_error"]
    clock.advance(30)  # the third, a minute after the first: quarantined
    [quarantined] = app.pickup.poll(P, stock_in)
    assert quarantined.outcome == "quarantined"
    assert quarantined.ledger_id is not None
    assert app.pickup.poll(P, stock_in) == []  # skipped from now on
    entry = ledger(app)[-1]
    assert (entry.id, entry.outcome, entry.source) == (quarantined.ledger_id, "quarantined", "stock-in:1-poisoned.csv")
    assert entry.error is not None
    assert "3 transport failures over 60 s" in entry.error

    config = tmp_path / "gateway.toml"
    wrong = gateway(config, "ledger", "release", "--partner", P, "--id", str(ledger(app)[0].id))
    assert wrong.exit_code == 1, wrong.output
    assert "not a quarantined file" in wrong.output
    released = gateway(config, "ledger", "release", "--partner", P, "--id", str(quarantined.ledger_id))
    assert released.exit_code == 0, released.output
    assert ledger(app)[-1].outcome == "released"
    assert contents(app)["transport_failures"] == []

    cure(app)
    assert [(p.file, p.outcome) for p in app.pickup.poll(P, stock_in)] == [("1-poisoned.csv", "applied")]
    assert stocked(app) == {"A": 2, "B": 3, "C": 4, "POISON": 1, "OTHER": 9}
    assert os.listdir(tmp_path / "drop") == ["archive"]


@on_postgres
def test_a_feed_page_whose_apply_fails_in_the_store_fails_the_poll_and_keeps_the_cursor(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, events: Events
) -> None:
    """The first page applies; the second (with the poisoned SKU) rolls back with its cursor: `feed_poll_failed`
    with PostgreSQL's message, the cursor after page one, and the next poll asks for page two again."""
    monkeypatch.setenv(TOKEN_ENV, "partner-token")
    with FakePartner() as fake:
        fake.add_items("stock", [{"sku": f"S{n}", "quantity": n, "as_of": "2026-01-01T00:00:00Z"} for n in range(3)])
        fake.add_items("stock", [{"sku": "POISON", "quantity": 1, "as_of": "2026-01-01T00:00:00Z"}])
        api = {"base_url": fake.url, "token_env": TOKEN_ENV, "page_limit": 3, "failed": "api-failed"}
        app = make_app(p={"stock_mode": "simple", "api": api})
        poison(app)

        report = app.feeds.poll(P, "stock")
        assert [page.result.outcome for page in report.pages] == ["applied"]
        assert report.error is not None
        assert "poisoned SKU POISON" in report.error
        assert report.cursor == "3"
        [failed] = [e for e in events if e["event"] == "feed_poll_failed"]
        assert "poisoned SKU POISON" in failed["error"]
        assert "DETAIL" not in failed["error"]
        with app.store.read() as tx:
            assert tx.feeds.cursor(tx.partners.id_of(P), "stock") == "3"

        cure(app)
        again = app.feeds.poll(P, "stock")
        assert [(page.result.outcome, page.result.counts.applied) for page in again.pages] == [("applied", 1)]
        assert stocked(app) == {"S0": 0, "S1": 1, "S2": 2, "POISON": 1}


@pytest.mark.both_stores
def test_a_file_quarantined_before_the_upgrade_can_be_released_after_it(store_url: str) -> None:
    """Migration 0007 links a quarantined file to its `quarantined` ledger entry, so release finds it."""
    old = SqlStore.open(store_url, migrate=False)
    old.migrate("0006")
    with old.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO partners (id, name, stock_mode, pending_allocation, created_at) "
            "VALUES (1, 'p', 'simple', false, 0)"
        )
        connection.exec_driver_sql(
            "INSERT INTO ingest_ledger (id, partner_id, kind, source, sha256, size, received_at, outcome, error) "
            "VALUES (7, 1, 'stock', 'stock-in:q.csv', '', 10, 500, 'quarantined', 'quarantined after 5 failures')"
        )
        connection.exec_driver_sql(
            "INSERT INTO transport_failures (partner_id, source, identity, failures, quarantined_at, updated_at) "
            "VALUES (1, 'stock-in', 'q.csv|10|1.000000', 5, 500, 500)"
        )
    old.close()
    store = SqlStore.open(store_url)
    try:
        with store.write() as tx:
            assert tx.ledger.quarantined(1, "stock-in") == {"q.csv|10|1.000000"}
            assert tx.ledger.release(1, 7, 1_000_000)
            assert tx.ledger.quarantined(1, "stock-in") == set()
            [entry] = tx.ledger.entries(1)
        assert entry.outcome == "released"
        assert entry.error == "quarantined after 5 failures; released at 1970-01-01T00:00:01Z"
    finally:
        store.close()
