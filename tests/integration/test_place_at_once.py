"""A placement in one statement on PostgreSQL (gateway_place, migration 0010; gateway/service/at_once.py).

It must do exactly what the engine's path does (the same rows written, the same changes answered, the same
refusals, the same Idempotency-Key answer byte for byte), in one statement that is its own transaction, and give
way to the engine's path whenever it cannot decide alone: a lock held elsewhere, a SKU with channels or no stock.
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import bootstrap
from gateway import settings as gateway_settings
from gateway.domain.errors import InsufficientStock, OrderExists, Refusal
from gateway.domain.orders import RequestedLine
from gateway.platform_api.routes.orders import _Answers
from gateway.service import orders
from gateway.store.port import PlaceAtOnce, PlacedAtOnce
from gateway.store.sql import SqlStore
from tests.conftest import FakeClock, postgres_base_url, postgres_schema, write_config
from tests.support.worker import wait_until

SERVER_LOGS = "/var/log/postgresql/*.log"  # Debian's log of the server (log_line_prefix names the process)
MODES: list[dict[str, Any]] = [
    {"stock_mode": "simple"},
    {"stock_mode": "simple", "pending_allocation": False},
    {"stock_mode": "advanced"},
    {"stock_mode": "time_based"},
]
# identifiers as the rules allow them: quotes, backslashes, non-ASCII (no control characters)
SKUS = ["A", "B-1", 'qu"ote', "back\\slash", "Äpfel ✓", "Z"]


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_schema(postgres_base_url()) as schema_url:
        yield schema_url


def build(folder: Path, url: str, clock: FakeClock, **partner: Any) -> bootstrap.App:
    folder.mkdir(parents=True, exist_ok=True)
    path = write_config(folder, {"p": partner}, url)
    return bootstrap.build(gateway_settings.load(path, environ={}), clock=clock)


class Statements:
    """What the store's one connection sends, as the server's log shows it (log_statement = all on that connection:
    BEGIN, COMMIT, ROLLBACK and DEALLOCATE included). The placement in one statement runs on the driver's own
    connection, out of SQLAlchemy's sight: only the server sees everything."""

    def __init__(self, app: bootstrap.App) -> None:
        with engine_of(app).connect() as connection:
            self.pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        found = sorted(glob.glob(SERVER_LOGS), key=os.path.getmtime)
        if not found or not os.access(found[-1], os.R_OK):
            if os.environ.get("CI"):
                pytest.fail(f"the PostgreSQL server's log ({SERVER_LOGS}) cannot be read: CI counts statements there")
            pytest.skip(f"the PostgreSQL server's log ({SERVER_LOGS}) cannot be read here")
        self.log = Path(found[-1])
        self.clear()

    def clear(self) -> None:
        self.start = self.log.stat().st_size

    @property
    def sent(self) -> list[str]:
        with self.log.open("rb") as handle:
            handle.seek(self.start)
            written = handle.read().decode("utf-8", "replace")
        marker = f"[{self.pid}] "
        logged = [line.split("LOG:  ", 1)[1] for line in written.splitlines() if marker in line and "LOG:  " in line]
        return [line for line in logged if line.startswith(("statement: ", "execute "))]


def logged_app(folder: Path, url: str, **partner: Any) -> bootstrap.App:
    """An app whose store has one connection, logging every statement it is sent."""
    logged = url.replace("options=-csearch_path", "options=-clog_statement%3Dall%20-csearch_path")
    app = build(folder, logged, FakeClock(), **partner)
    path = folder / "gateway.toml"
    path.write_text(path.read_text().replace("[store]\n", "[store]\npool_size = 1\nmax_overflow = 0\n", 1))
    app.close()
    return build(folder, logged, FakeClock(), **partner)


def stock(app: bootstrap.App, **levels: int) -> None:
    for sku, level in levels.items():
        app.commands.set_stock("p", sku, level, 0)


def engine_of(app: bootstrap.App) -> sqlalchemy.Engine:
    store = app.store
    assert isinstance(store, SqlStore)
    return store.engine


def test_a_placement_is_one_statement_that_is_its_own_transaction(tmp_path: Path, url: str) -> None:
    """One SKU, two SKUs, under an Idempotency-Key, and refusals: each one statement on the server, no BEGIN, COMMIT,
    ROLLBACK or DEALLOCATE (a rollback would make the driver drop its prepared statements)."""
    app = logged_app(tmp_path, url, stock_mode="advanced")
    try:
        stock(app, A=10, B=20)
        seen = Statements(app)
        app.commands.place("p", "O1", [RequestedLine("A", 1)])
        assert len(seen.sent) == 1, seen.sent
        assert "gateway_place" in seen.sent[0]
        seen.clear()
        app.commands.place("p", "O2", [RequestedLine("A", 1), RequestedLine("B", 2)])
        assert len(seen.sent) == 1, seen.sent
        seen.clear()
        request = orders.OrderRequest("p", "O3", [RequestedLine("B", 1)], "key-3", "digest-3")
        placed = orders.place(app.commands, request, _Answers("p", "O3"))
        assert isinstance(placed, orders.Placed)
        assert placed.changes[0].after == 17
        assert len(seen.sent) == 1, seen.sent
        seen.clear()
        with pytest.raises(InsufficientStock):
            app.commands.place("p", "O4", [RequestedLine("A", 9)])
        with pytest.raises(OrderExists):
            app.commands.place("p", "O1", [RequestedLine("B", 1)])
        for n in range(8):  # past the driver's threshold for preparing a statement: still one each, never dropped
            app.commands.place("p", f"O{5 + n}", [RequestedLine("B", 1)])
        assert len(seen.sent) == 10, seen.sent
        assert all("gateway_place" in line for line in seen.sent), seen.sent
    finally:
        app.close()


def test_an_order_naming_a_channel_or_a_sku_with_channels_takes_the_engines_path(tmp_path: Path, url: str) -> None:
    """A cap is the engine's to check: an order naming a collection, or on a SKU that has channels, is placed by
    the engine (a transaction of several statements), with the channel's ATS queued as before."""
    app = logged_app(tmp_path, url, stock_mode="advanced")
    try:
        stock(app, A=10)
        app.commands.set_cap("p", "A", "shop", None, 5)
        seen = Statements(app)
        app.commands.place("p", "O1", [RequestedLine("A", 1, "shop", "week-1")])
        assert len(seen.sent) > 2, seen.sent
        assert not any("gateway_place" in line for line in seen.sent), seen.sent
        seen.clear()
        app.commands.place("p", "O2", [RequestedLine("A", 1)])  # no channel named, but A has channels now
        assert "gateway_place" in seen.sent[0], seen.sent
        assert len(seen.sent) > 2, seen.sent  # it answered `general`: the engine placed it
        with app.store.read() as tx:
            partner_id = tx.partners.id_of("p")
            assert tx.stock.get(partner_id, ["A"])["A"].allocated == 2
            channel_values = [m.value for m in tx.outbox.rows(partner_id) if m.kind == "channel_ats"]
        assert channel_values  # the engine queued the channel's ATS
    finally:
        app.close()


def test_a_sku_locked_elsewhere_makes_the_placement_wait_on_the_engines_path(tmp_path: Path, url: str) -> None:
    """The function only tries the locks: when a command holds the SKU, nothing is written and the engine's path
    waits for it, then places; the stock is allocated once."""
    app = build(tmp_path / "a", url, FakeClock(), stock_mode="advanced")
    other = SqlStore.open(url)
    try:
        stock(app, A=1)
        done: list[object] = []
        with other.write() as tx:
            tx.locks.keys(tx.partners.id_of("p"), (), ["A"])

            def place() -> None:
                try:
                    done.append(app.commands.place("p", "O1", [RequestedLine("A", 1)]))
                except Refusal as refusal:
                    done.append(refusal)

            thread = threading.Thread(target=place)
            thread.start()
            probe = sqlalchemy.create_engine(postgres_base_url(), poolclass=sqlalchemy.pool.NullPool)
            waiting = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid <> pg_backend_pid()"
            )
            with probe.connect() as connection:
                wait_until(lambda: connection.execute(sqlalchemy.text(waiting)).scalar_one() > 0, 30, "it waits")
            probe.dispose()
            assert done == []
        thread.join(30)
        assert len(done) == 1
        assert isinstance(done[0], list)
        with app.store.read() as tx:
            assert tx.stock.get(tx.partners.id_of("p"), ["A"])["A"].allocated == 1
    finally:
        other.close()
        app.close()


def test_racing_placements_never_oversell(tmp_path: Path, url: str) -> None:
    """Eight threads each placing orders of one unit on a SKU with 40 units: exactly 40 are placed, the rest
    refused, and the stock allocates 40 (through the one statement, or the engine when a lock was held)."""
    app = build(tmp_path, url, FakeClock(), stock_mode="advanced")
    try:
        stock(app, A=40)
        outcomes: list[str] = []
        lock = threading.Lock()

        def client(index: int) -> None:
            for n in range(10):
                try:
                    app.commands.place("p", f"O{index}-{n}", [RequestedLine("A", 1)])
                    result = "placed"
                except InsufficientStock:
                    result = "short"
                with lock:
                    outcomes.append(result)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert outcomes.count("placed") == 40
        assert outcomes.count("short") == 40
        with app.store.read() as tx:
            assert tx.stock.get(tx.partners.id_of("p"), ["A"])["A"].allocated == 40
    finally:
        app.close()


TABLES = {
    "orders": "SELECT order_id, status, created_at, updated_at FROM orders ORDER BY order_id",
    "order_lines": "SELECT order_id, sku, quantity, assembly, collection FROM order_lines ORDER BY order_id, sku",
    "order_events": "SELECT order_id, status, at, ledger_id, command FROM order_events ORDER BY order_id, id",
    "stock": "SELECT sku, quantity, as_of, allocated, published, last_moved_at, set_by, updated_at FROM stock "
    "ORDER BY sku",
    "outbox": "SELECT kind, key, value, as_of, payload, ledger_id, created_at, state, batch_id, run_id, attempts "
    "FROM outbox ORDER BY kind, key, id",
    "platform_requests": "SELECT key, request_sha256, status, body, created_at FROM platform_requests ORDER BY key",
}


def contents(app: bootstrap.App) -> dict[str, list[Any]]:
    with engine_of(app).connect() as connection:
        return {name: [tuple(row) for row in connection.exec_driver_sql(sql)] for name, sql in TABLES.items()}


def engine_only(store: Any) -> None:
    """Make `store` answer as SQLite does: no placement in one statement (the engine's path every time)."""

    def none(_request: PlaceAtOnce) -> PlacedAtOnce | None:
        return None

    store.place_at_once = none


ORDERS = st.lists(
    st.tuples(
        st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=3),
        st.booleans(),  # under an Idempotency-Key (the API's way)
        st.booleans(),  # reuse an order id placed before
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mode=st.sampled_from(MODES),
    levels=st.lists(st.integers(-2, 6), min_size=len(SKUS), max_size=len(SKUS)),
    placements=ORDERS,
)
def test_the_one_statement_does_what_the_engines_path_does(
    tmp_path_factory: pytest.TempPathFactory, mode: dict[str, Any], levels: list[int], placements: Any
) -> None:
    """The same placements on two stores, one placing in one statement, the other through the engine alone: the same
    answers (changes, refusals, the key's answer byte for byte) and the same rows in every table they write."""
    with postgres_schema(postgres_base_url()) as fast_url, postgres_schema(postgres_base_url()) as slow_url:
        folder = tmp_path_factory.mktemp("alike")
        fast = build(folder / "fast", fast_url, FakeClock(), **mode)
        apps = [fast, build(folder / "slow", slow_url, FakeClock(), **mode)]
        engine_only(apps[1].store)
        try:
            for app in apps:
                stock(app, **dict(zip(SKUS, levels, strict=True)))
            for index, (lines, keyed, reuse) in enumerate(placements):
                order_id = "O0" if reuse and index else f"O{index}"
                requested = [RequestedLine(sku, quantity) for sku, quantity in lines]
                answers = [place(app, order_id, requested, f"k{index}" if keyed else None) for app in apps]
                assert answers[0] == answers[1], (order_id, requested)
                for app in apps:
                    app.commands.clock.advance(1)  # type: ignore[attr-defined]
            assert contents(apps[0]) == contents(apps[1])
        finally:
            for app in apps:
                app.close()


def place(app: bootstrap.App, order_id: str, lines: list[RequestedLine], key: str | None) -> object:
    """What a placement answers, comparable across stores."""
    if key is not None:
        request = orders.OrderRequest("p", order_id, lines, key, f"digest-{key}")
        outcome = orders.place(app.commands, request, _Answers("p", order_id))
        if isinstance(outcome, orders.Placed):
            return ("placed", sorted(outcome.changes, key=lambda c: c.sku), outcome.answer)  # the 201 as sent
        if isinstance(outcome, orders.Refused):
            return ("refused", outcome.refusal.code, str(outcome.refusal))
        return ("replayed", outcome.answer)
    try:
        return ("placed", sorted(app.commands.place("p", order_id, lines), key=lambda c: c.sku))
    except Refusal as refusal:
        return ("refused", refusal.code, str(refusal))


def test_a_partner_with_rows_cannot_be_deleted(url: str, tmp_path: Path) -> None:
    """The hot tables have no foreign key to partners on PostgreSQL: a trigger keeps a partner with rows."""
    app = build(tmp_path, url, FakeClock(), stock_mode="advanced")
    stock(app, A=1)
    app.close()
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            keys = connection.exec_driver_sql(
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = to_regclass('partners')"
                " AND conrelid IN (to_regclass('stock'), to_regclass('outbox'), to_regclass('orders'))"
            ).scalar_one()
            assert keys == 0
        with pytest.raises(sqlalchemy.exc.IntegrityError, match="still has rows"), engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM partners WHERE name = 'p'")
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO partners (name, stock_mode, pending_allocation, created_at) "
                "VALUES ('q', 'simple', true, 0)"
            )
            assert connection.exec_driver_sql("DELETE FROM partners WHERE name = 'q'").rowcount == 1
    finally:
        engine.dispose()


def test_a_connection_the_server_dropped_is_replaced_and_the_command_runs_again(tmp_path: Path, url: str) -> None:
    """No ping on checkout: the pool's one connection, killed by the server, fails its next statement and is
    replaced; the placement (one statement) and a command through the engine each run again and go through."""
    app = logged_app(tmp_path, url, stock_mode="advanced")
    admin = sqlalchemy.create_engine(
        postgres_base_url(), poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT"
    )  # each look at pg_stat_activity a transaction (and a snapshot) of its own

    def kill_the_pools_connection() -> None:
        with engine_of(app).connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with admin.connect() as connection:
            assert connection.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar_one()
            gone = f"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = {int(pid)}"
            wait_until(lambda: connection.exec_driver_sql(gone).scalar_one(), 30, "the backend is gone")

    try:
        stock(app, A=5)
        kill_the_pools_connection()
        assert [c.after for c in app.commands.place("p", "O1", [RequestedLine("A", 1)])] == [4]
        kill_the_pools_connection()
        app.commands.set_stock("p", "A", 9, 1)  # the engine's path: SQLAlchemy's connection
        with app.store.read() as tx:
            assert tx.stock.get(tx.partners.id_of("p"), ["A"])["A"].quantity == 9
    finally:
        admin.dispose()
        app.close()
