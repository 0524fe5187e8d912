"""Migration 0010 on a store made by the release before it (revision 0009), in place, on both stores.

The old store is made by today's code on a schema held at 0009 (0010 adds no column: what the code writes, a 0009
release wrote), except placements: a 0009 release placed every order through the engine, and so do these (the
one-statement function does not exist yet). Deliveries go to the fake partner on 127.0.0.1, before and after the
upgrade: undelivered messages arrive afterwards with their latest values, a batch sent before goes again under its
Idempotency-Key, dead letters keep the partner's answer until revived. On PostgreSQL the hot tables lose their
foreign keys to `partners`, the trigger `partners_keep` keeps a partner with rows, and a placement takes one
statement (`gateway_place`); SQLite keeps its foreign keys and the engine's path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from sqlalchemy import event, exc, inspect, select

from gateway import bootstrap, settings
from gateway.domain.messages import OutboxState
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.service import collections, dead_letters, demand, queries, schedules
from gateway.store import schema
from gateway.store.records import LineRecord, OrderRecord, OutboxRecord, PlaceAtOnce, PlacedAtOnce
from gateway.store.sql import SqlStore, head_revision
from gateway.store.sql.orders import SqlOrders
from tests.conftest import FakeClock, postgres_base_url, postgres_schema, write_config
from tests.support.partner import FakePartner, Recorded, Status, running

pytestmark = pytest.mark.both_stores

OLD = "0009"  # the revision of the release before migration 0010
HOT_TABLES = ("stock", "outbox", "orders", "channels", "platform_requests")
# what the old release held, compared row for row after the upgrade
KEPT_TABLES = (*HOT_TABLES, "partners", "order_lines", "order_events", "caps", "confirmations")
TOKEN_ENV = "GATEWAY_TEST_UPGRADE_TOKEN"  # noqa: S105 - the name of a variable, not a secret
TOKEN = "upgrade-s3cret"  # noqa: S105 - the fake partner's token, not a secret
REFUSAL = '{"error": "unknown sku D"}'
DEAD = ("D", "E")
PENDING, DEAD_LETTER = OutboxState.PENDING, OutboxState.DEAD
# a row in each hot table, of partners 1 to 5 in HOT_TABLES' order
ONE_ROW_EACH = (
    "INSERT INTO stock (partner_id, sku, quantity, updated_at) VALUES (1, 'A', 1, 0)",
    "INSERT INTO outbox (partner_id, kind, key, value, created_at) VALUES (2, 'ats', 'A', 1, 0)",
    "INSERT INTO orders (partner_id, order_id, status, created_at, updated_at) VALUES (3, 'O', 'pending', 0, 0)",
    "INSERT INTO channels (partner_id, sku, assembly, collection) VALUES (4, 'A', 'WEB', '*')",
    "INSERT INTO platform_requests (partner_id, key, request_sha256, status, body, created_at) "
    "VALUES (5, 'k', 'x', 201, '{}', 0)",
)


@dataclass
class Site:
    """A partner `p` delivering to the fake partner (FakeClock's time), on one store URL."""

    url: str
    config: settings.Settings
    partner: FakePartner
    clock: FakeClock = field(default_factory=FakeClock)
    opened: list[SqlStore | bootstrap.App] = field(default_factory=list)  # closed at the end, whatever happens

    def app(self, store: SqlStore) -> bootstrap.App:
        """The use cases on `store` (at whatever revision it is), its partners registered; no backoff waits."""
        bootstrap.sync_partners(store, self.config, self.clock)
        app = bootstrap.wire(self.config, store, self.clock, sleep=lambda seconds: None)
        self.opened.append(app)
        return app

    def store(self, *, revision: str | None = None) -> SqlStore:
        """The store, held at `revision` (a new one), or brought to the head as a release opens it (None)."""
        store = SqlStore.open(self.url, migrate=revision is None)
        self.opened.append(store)
        if revision is not None:
            store.migrate(revision)
            assert store.revision() == revision
        return store

    def build(self) -> bootstrap.App:
        """The app as a release starts it: the store opened (and migrated in place), the partners registered."""
        app = bootstrap.build(self.config, clock=self.clock)
        self.opened.append(app)
        return app

    def posts(self, since: int = 0) -> list[Recorded]:
        return [r for r in self.partner.requests[since:] if r.method == "POST"]


@pytest.fixture
def site(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with running(token=TOKEN) as partner:
        api = {"base_url": partner.url, "token_env": TOKEN_ENV, "connect_timeout": 2.0, "read_timeout": 2.0}
        # one attempt per pass, batches of two, a breaker that does not get in the way
        delivery = {"batch_size": 2, "retries": 1, "backoff_initial": 0.5, "breaker_threshold": 100}
        path = write_config(tmp_path, {"p": {"stock_mode": "simple", "api": api, "delivery": delivery}}, store_url)
        made = Site(store_url, settings.load(path, environ={}), partner)
        try:
            yield made
        finally:
            for opened in reversed(made.opened):  # closing twice is harmless
                opened.close()


_OLD_LINE = ("sku", "quantity", "assembly", "collection", "confirmed_quantity", "confirmed_at")  # before 0015


def _get_as_0009(self: SqlOrders, partner_id: int, order_id: str) -> OrderRecord | None:
    """An order read without its lines' demand dates, which a 0009 store does not have (0015)."""
    o, lines = schema.orders, schema.order_lines
    head = self.connection.execute(
        select(o.c.status, o.c.created_at, o.c.updated_at).where(o.c.partner_id == partner_id, o.c.order_id == order_id)
    ).first()
    if head is None:
        return None
    found = self.connection.execute(
        select(*(lines.c[name] for name in _OLD_LINE))
        .where(lines.c.partner_id == partner_id, lines.c.order_id == order_id)
        .order_by(lines.c.sku)
    )
    records = tuple(LineRecord(**row._mapping) for row in found)
    return OrderRecord(order_id, OrderStatus(head.status), records, head.updated_at, head.created_at)


def _add_as_0009(
    self: SqlOrders, partner_id: int, order_id: str, status: OrderStatus, lines: Sequence[LineRecord], now: int
) -> None:
    """An order written without its lines' demand dates (0015)."""
    self.connection.execute(
        schema.orders.insert(),
        {"partner_id": partner_id, "order_id": order_id, "status": status.value, "created_at": now, "updated_at": now},
    )
    rows = [{"partner_id": partner_id, "order_id": order_id, **{n: getattr(x, n) for n in _OLD_LINE}} for x in lines]
    self.connection.execute(schema.order_lines.insert(), rows)


@contextmanager
def as_0009() -> Iterator[None]:
    """Today's engine on a 0009 store, as that release ran: it knew no collection windows (collection_dates, 0014),
    no dated supply or demand (supply_receipts 0013, dated_demand and line dates 0015)."""
    with (
        mock.patch.object(collections, "check_open"),
        mock.patch.object(demand, "line_days", lambda _tx, _id, lines, _on, _today: dict.fromkeys(lines)),
        mock.patch.object(demand, "check", return_value=None),
        mock.patch.object(demand, "today_balances", return_value={}),
        mock.patch.object(SqlOrders, "get", _get_as_0009),
        mock.patch.object(SqlOrders, "add", _add_as_0009),
    ):
        yield


def place_as_0009(app: bootstrap.App, order_id: str, lines: Sequence[RequestedLine]) -> None:
    """Place an order as the 0009 release did: through the engine, in one write transaction (see as_0009)."""
    with as_0009():
        app.commands.transaction("p", "order_placed", lambda tx: app.commands.engine(tx, "p").place(order_id, lines))


def outbox(app: bootstrap.App, state: OutboxState | None = None) -> list[OutboxRecord]:
    with app.store.read() as tx:
        return tx.outbox.rows(tx.partners.id_of("p"), state=state)


def app_ats(app: bootstrap.App) -> dict[str, int]:
    with app.store.read() as tx:
        return {view.sku: view.ats for view in queries.ats(tx, "p")}


def contents(store: SqlStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables the old release wrote, in primary-key order."""
    with store.engine.connect() as connection:
        tables = [schema.metadata.tables[name] for name in KEPT_TABLES]
        ordered = {  # the columns the old release had (0015 added order_lines.demand_on)
            table.name: select(*(c for c in table.c if (table.name, c.name) != ("order_lines", "demand_on"))).order_by(
                *table.primary_key.columns
            )
            for table in tables
        }
        return {name: [tuple(row) for row in connection.execute(query)] for name, query in ordered.items()}


def keys_to_partners(store: SqlStore) -> dict[str, int]:
    """How many foreign keys each hot table has to `partners`."""
    found = inspect(store.engine)
    return {t: sum(fk["referred_table"] == "partners" for fk in found.get_foreign_keys(t)) for t in HOT_TABLES}


def triggers_and_functions(store: SqlStore) -> tuple[list[str], int]:
    """The triggers on `partners` and how many `gateway_place` functions the store's schema holds."""
    with store.engine.connect() as connection:
        if store.dialect == "sqlite":
            names = connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars()
            return sorted(names), 0
        names = connection.exec_driver_sql(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass('partners') AND NOT tgisinternal"
        ).scalars()
        functions = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_proc WHERE proname = 'gateway_place' "
            "AND pronamespace = current_schema()::regnamespace"
        ).scalar_one()
        return sorted(names), int(functions)


def fill_as_0009(site: Site, app: bootstrap.App) -> str:
    """What a 0009 release left: dead letters with the partner's answer, a batch sent and failed, messages never
    sent of every kind, orders, a channel and an API answer. Returns the failed batch's Idempotency-Key."""
    with pytest.MonkeyPatch.context() as patch:
        # a 0009 release read no dated supply (`supply_receipts`, migration 0013) to claim an ATS batch
        patch.setattr(schedules, "attach", lambda _tx, _partner, claim, _zone, _limit: claim)
        # nor to publish a level (today's ATP of a SKU holding receipts)
        patch.setattr(demand, "today_balances", lambda _tx, _partner_id, _records: {})
        return _fill_as_0009(site, app)


def _fill_as_0009(site: Site, app: bootstrap.App) -> str:
    clock, commands = site.clock, app.commands
    for sku, quantity in (("D", 4), ("E", 6)):
        clock.advance(1)
        commands.set_stock("p", sku, quantity, None)
    site.partner.script(Status(400, body=REFUSAL))
    assert app.publisher.deliver("p").dead == 2
    for sku, quantity in (("A", 5), ("B", 3)):
        clock.advance(1)
        commands.set_stock("p", sku, quantity, None)
    site.partner.script(Status(500))
    assert app.publisher.deliver("p").failed_batches == 1
    [failed] = [p for p in site.posts() if p.outcome == "status 500"]
    assert failed.idempotency_key is not None
    clock.advance(1)
    commands.set_stock("p", "A", 7, None)  # A leaves the failed batch with its newer value; B stays in it
    clock.advance(1)
    commands.set_stock("p", "C", 9, None)
    commands.set_cap("p", "C", "WEB", "EU", 4)
    place_as_0009(app, "O2", [RequestedLine("C", 1, "WEB", "EU")])
    clock.advance(1)
    place_as_0009(app, "O1", [RequestedLine("A", 2)])
    clock.advance(1)
    with as_0009():
        commands.set_status("p", "O1", OrderStatus.INVOICING)  # an order export
        clock.advance(1)
        commands.set_status("p", "O1", OrderStatus.CLOSED)  # an order closed
    with app.store.write() as tx:
        tx.requests.keep(tx.partners.id_of("p"), "key-1", "0" * 64, 201, '{"order_id": "O9"}', clock())
    return failed.idempotency_key


def check_old_outbox(app: bootstrap.App, batch: str) -> None:
    """The old store holds what the test is about: dead letters, a failed batch, messages never sent."""
    dead = outbox(app, DEAD_LETTER)
    assert [row.key for row in dead] == list(DEAD)
    assert all((row.last_status, row.attempts) == (400, 1) and REFUSAL in (row.last_error or "") for row in dead)
    pending = {(str(row.kind), row.key): row for row in outbox(app, PENDING)}
    assert set(pending) >= {("ats", "A"), ("ats", "B"), ("ats", "C"), ("order_export", "O1"), ("order_closed", "O1")}
    assert any(kind == "channel_ats" for kind, _ in pending)
    failed = pending["ats", "B"]
    assert (failed.batch_id, failed.attempts, failed.last_status, failed.value) == (batch, 1, 500, 3)
    assert (pending["ats", "A"].batch_id, pending["ats", "A"].value) == (None, 5)  # 7, less O1's 2


def test_a_0009_store_with_undelivered_and_dead_messages_upgrades_in_place_and_delivers_them(site: Site) -> None:
    old = site.store(revision=OLD)
    app = site.app(old)
    batch = fill_as_0009(site, app)
    check_old_outbox(app, batch)
    kept = contents(old)
    keys_before = keys_to_partners(old)
    app.close()
    assert keys_before == dict.fromkeys(HOT_TABLES, 1)  # the old layout had them, on both stores

    upgraded = site.store()
    assert upgraded.revision() == head_revision() != OLD
    assert contents(upgraded) == kept
    if upgraded.dialect == "postgresql":
        assert keys_to_partners(upgraded) == dict.fromkeys(HOT_TABLES, 0)
        assert triggers_and_functions(upgraded) == (["partners_keep"], 1)
    else:  # SQLite: nothing changes
        assert keys_to_partners(upgraded) == keys_before
        assert triggers_and_functions(upgraded) == ([], 0)

    deliver_after_the_upgrade(site, site.app(upgraded), batch)


def deliver_after_the_upgrade(site: Site, app: bootstrap.App, batch: str) -> None:
    dead_before = outbox(app, DEAD_LETTER)
    site.clock.now = max(row.next_attempt_at or 0 for row in outbox(app, PENDING)) + 1_000_000
    sent_before = len(site.partner.requests)

    report = app.publisher.deliver("p")

    assert report.ok
    assert outbox(app, PENDING) == []
    posts = site.posts(sent_before)
    assert all(p.outcome == "applied" for p in posts)
    resent = [p for p in posts if p.idempotency_key == batch]
    assert [[(item["sku"], item["ats"]) for item in p.json()["items"]] for p in resent] == [[("B", 3)]]
    ats = app_ats(app)
    assert site.partner.ats_view() == {sku: value for sku, value in ats.items() if sku not in DEAD}
    assert site.partner.ats_view()["A"] == 5
    with app.store.read() as tx:
        channels = {key: queries.channel(tx, "p", *key).ats for key in site.partner.channel_view()}
    assert ("C", "WEB", "EU") in channels
    assert site.partner.channel_view() == channels
    assert site.partner.arrivals("order_export") == Counter({"O1": 1})
    assert site.partner.arrivals("order_closed") == Counter({"O1": 1})
    [closed] = site.partner.items("order_closed")
    assert (closed["status"], [line["sku"] for line in closed["lines"]]) == ("closed", ["A"])

    # dead letters stay dead, with the partner's answer, until revived
    site.clock.advance(3600)
    assert app.publisher.deliver("p").batches == 0
    assert outbox(app, DEAD_LETTER) == dead_before
    retried = dead_letters.retry(app.store, "p", None, site.clock())
    assert retried == dead_letters.Retried(revived=2, superseded=0)
    sent_before = len(site.partner.requests)

    report = app.publisher.deliver("p")

    assert (report.ok, report.delivered) == (True, 2)
    assert [p.outcome for p in site.posts(sent_before)] == ["applied"]
    assert site.partner.ats_view() == app_ats(app)
    assert {sku: site.partner.ats_view()[sku] for sku in DEAD} == {"D": 4, "E": 6}
    assert {row.state for row in outbox(app)} == {"delivered"}


def test_after_the_upgrade_a_partner_with_rows_cannot_be_deleted_and_one_without_can() -> None:
    """PostgreSQL: no foreign key keeps a partner any more; the trigger refuses to delete one with rows in any hot
    table, in its own words, and lets one without rows go."""
    with postgres_schema(postgres_base_url()) as url:
        with closing(SqlStore.open(url, migrate=False)) as old:
            old.migrate(OLD)
            with old.engine.begin() as connection:
                for number, name in enumerate((*HOT_TABLES, "empty"), start=1):
                    connection.exec_driver_sql(
                        "INSERT INTO partners (id, name, stock_mode, pending_allocation, created_at) "
                        f"VALUES ({number}, '{name}', 'simple', false, 0)"
                    )
                for statement in ONE_ROW_EACH:  # partner n has a row in the n-th hot table only
                    connection.exec_driver_sql(statement)

        with closing(SqlStore.open(url)) as store:
            for table in HOT_TABLES:
                refused = pytest.raises(exc.IntegrityError, match=f"partner {table} still has rows")
                with refused, store.engine.begin() as connection:
                    connection.exec_driver_sql(f"DELETE FROM partners WHERE name = '{table}'")
            with store.engine.begin() as connection:
                gone = connection.exec_driver_sql("DELETE FROM partners WHERE name = 'empty'").rowcount
                left = connection.exec_driver_sql("SELECT name FROM partners ORDER BY id").scalars().all()
            assert (gone, left) == (1, list(HOT_TABLES))


def test_a_placement_right_after_the_upgrade_works_and_on_postgresql_takes_one_statement(site: Site) -> None:
    old = site.app(site.store(revision=OLD))
    old.commands.set_stock("p", "A", 5, None)
    old.close()
    app = site.build()
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    assert app.store.revision() == head_revision()
    assert app_ats(app) == {"A": 5}  # the partner's id is known from here on
    site.clock.advance(1)
    answered: list[str] = []
    place_at_once = app.store.place_at_once

    def placing(request: PlaceAtOnce) -> PlacedAtOnce | None:
        done = place_at_once(request)
        answered.append("none" if done is None else done.outcome)
        return done

    app.store.place_at_once = placing  # type: ignore[method-assign]
    event.listen(app.store.engine, "before_cursor_execute", count)
    try:
        app.commands.place("p", "O1", [RequestedLine("A", 2)])
    finally:
        event.remove(app.store.engine, "before_cursor_execute", count)

    assert app_ats(app) == {"A": 3}
    with app.store.read() as tx:
        order = tx.orders.get(tx.partners.id_of("p"), "O1")
    assert order is not None
    assert order.status == OrderStatus.PENDING
    assert [(row.key, row.value, row.state) for row in outbox(app)] == [("A", 3, "pending")]
    if app.store.dialect == "postgresql":
        # placed by gateway_place, on the driver's connection: the engine's path sent nothing
        # (tests/integration/test_place_at_once.py counts the statements the server logs: one)
        assert (answered, statements) == (["placed"], [])
    else:  # SQLite: no placement in one statement; the engine's path placed it (above)
        assert answered == ["none"]
