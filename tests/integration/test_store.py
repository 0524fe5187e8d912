"""The SQLite store: migrations in place, one transaction per item, no oversell under concurrent placements."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from gateway import bootstrap, settings
from gateway.domain.errors import InsufficientStock
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.store import schema
from gateway.store.port import StoreError
from gateway.store.sql import SqlStore, head_revision
from tests.conftest import AppFactory, FakeClock, write_config
from tests.integration.helpers import ats

pytestmark = pytest.mark.both_stores


def test_a_new_store_is_created_at_the_head_revision_with_the_declared_schema(store_url: str) -> None:
    """The migrations build exactly the tables the code declares."""
    store = SqlStore.open(store_url)
    assert store.revision() == head_revision()
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": _declared_here(store.dialect)})
        diff = compare_metadata(context, schema.metadata)
    assert diff == []
    store.close()


def test_a_store_made_by_an_older_release_upgrades_in_place_and_keeps_its_data(store_url: str) -> None:
    """A store at revision 0001 with stock in it opens at head with the stock intact."""
    url = store_url
    old = SqlStore.open(url, migrate=False)
    old.migrate("0001")
    with old.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO partners (id, name, stock_mode, pending_allocation, created_at) "
            "VALUES (1, 'p', 'advanced', true, 0)"
        )
        connection.exec_driver_sql(
            "INSERT INTO stock (partner_id, sku, quantity, allocated, updated_at) VALUES (1, 'A', 7, 0, 0)"
        )
    assert "ingest_ledger" not in _tables(old)
    old.close()
    upgraded = SqlStore.open(url)
    assert upgraded.revision() == head_revision()
    assert {"ingest_ledger", "outbox"} <= _tables(upgraded)
    with upgraded.read() as tx:
        assert tx.stock.get(tx.partners.id_of("p"), ["A"])["A"].quantity == 7
    upgraded.close()


def _declared_here(dialect: str) -> Callable[..., bool]:
    """What the database `dialect` is declared to have: a hot table's foreign key to its partner on SQLite only."""

    def include(item: object, _name: object, type_: str, _reflected: bool, _compare_to: object) -> bool:
        sqlite_only = type_ == "foreign_key_constraint" and bool(getattr(item, "info", {}).get(schema.SQLITE_ONLY))
        return dialect == "sqlite" or not sqlite_only

    return include


def _tables(store: SqlStore) -> set[str]:
    return set(inspect(store.engine).get_table_names())


@pytest.mark.sqlite_only
def test_the_store_runs_in_wal_mode_with_foreign_keys_on(make_app: AppFactory) -> None:
    """WAL for concurrent readers, foreign keys enforced."""
    app = make_app(p={"stock_mode": "simple"})
    with app.store.read() as tx:
        assert tx.connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert tx.connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_failure_inside_a_transaction_leaves_nothing_behind(make_app: AppFactory) -> None:
    """One item = one transaction: an exception after writes rolls all of them back."""
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock("p", "A", 5, None)

    class Boom(Exception):
        pass

    def fail_half_way() -> None:
        with app.store.write() as tx:
            tx.connection.exec_driver_sql("UPDATE stock SET quantity = 99")
            raise Boom

    with pytest.raises(Boom):
        fail_half_way()
    assert ats(app, "p", "A") == 5


def test_concurrent_placements_never_oversell(make_app: AppFactory) -> None:
    """Eight threads race 40 one-unit orders for 10 units: exactly 10 succeed and ATS is 0."""
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock("p", "A", 10, None)
    placed: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for n in range(5):
            order_id = f"T{index}-{n}"
            try:
                app.commands.place("p", order_id, [RequestedLine("A", 1)])
                outcome = placed
            except InsufficientStock:
                outcome = refused
            with lock:
                outcome.append(order_id)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert (len(placed), len(refused)) == (10, 30)
    assert ats(app, "p", "A") == 0


def test_changing_a_partners_stock_mode_recomputes_its_allocations(tmp_path: Path) -> None:
    """advanced -> simple without pending allocation: pending lines stop allocating at the next start."""
    clock = FakeClock()
    config = write_config(tmp_path, {"p": {"stock_mode": "advanced"}})
    app = bootstrap.build(settings.load(config, environ={}), clock=clock)
    app.commands.set_stock("p", "A", 10, None)
    app.commands.place("p", "O1", [RequestedLine("A", 4)])
    app.commands.place("p", "O2", [RequestedLine("A", 1)])
    app.commands.set_status("p", "O2", OrderStatus.CANCELLED)
    assert ats(app, "p", "A") == 6
    app.close()
    config = write_config(tmp_path, {"p": {"stock_mode": "simple", "pending_allocation": False}})
    app = bootstrap.build(settings.load(config, environ={}), clock=clock)
    assert ats(app, "p", "A") == 10
    app.close()


def test_a_store_upgraded_by_a_newer_release_is_refused_with_a_clear_error(store_url: str) -> None:
    """An older release started on a store a newer one migrated says so, and changes nothing."""
    SqlStore.open(store_url).close()
    store = SqlStore.open(store_url, migrate=False)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="revision 9999, which this release does not know"):
        store.migrate()
    assert store.revision() == "9999"
    store.close()


def test_a_store_on_a_database_other_than_sqlite_or_postgresql_is_refused_with_a_clear_error() -> None:
    """A URL naming another database is refused with the store's own error, before any driver is loaded."""
    with pytest.raises(StoreError, match="runs on SQLite or PostgreSQL, not mysql"):
        SqlStore.open("mysql://gateway@127.0.0.1/stock")


@pytest.mark.parametrize("mode", ["simple", "advanced", "time_based"])
def test_concurrent_confirmations_and_placements_keep_the_allocation_exact(make_app: AppFactory, mode: str) -> None:
    """Confirmations of one order while other orders are placed on its SKU: no placement's units are lost.

    On PostgreSQL the commands run side by side; each locks its order and SKU first, so none writes back a stock
    row another has changed meanwhile."""
    app = make_app(p={"stock_mode": mode})
    app.commands.set_stock("p", "S", 100_000, None)
    app.commands.place("p", "first", [RequestedLine("S", 1)])
    stop = threading.Event()
    confirmed: list[int] = []

    def confirmer() -> None:
        n = 0
        while not stop.is_set() and n < 300:
            n += 1
            app.commands.confirm("p", "first", "S", 1, 1_700_000_000_000_000 + n)
        confirmed.append(n)

    def placer(k: int) -> None:
        for i in range(40):
            app.commands.place("p", f"o-{k}-{i}", [RequestedLine("S", 1)])

    threads = [threading.Thread(target=confirmer)] + [threading.Thread(target=placer, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads[1:]:
        thread.join(60)
    stop.set()
    threads[0].join(60)
    assert confirmed
    assert confirmed[0] > 0
    with app.store.read() as tx:
        record = tx.stock.get(tx.partners.id_of("p"), ["S"])["S"]
    assert record.allocated == 121  # every unit of every pending line: 1 + 3 x 40
    assert record.published == 100_000 - 121
