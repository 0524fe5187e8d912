"""Commands and delivery side by side on PostgreSQL (issue 13, item 10): no deadlock between them, and a command the
server rolls back to untie a deadlock anyway is run again before any 503, whose body never shows the server's DETAIL.

The deadlock the issue met (a settle marking its batch delivered, then releasing the rows commands replaced while
a command holding one of those waits for the first) is staged step by step, and meets it every time before the fix.
The load runs in a database of its own, so the server's log lines about it are told from those of other tests by
their `user@database` prefix (Debian's log of the server; where it cannot be read, the gateway's side is checked
alone). Its length is LOAD_SECONDS (GATEWAY_TEST_LOAD_SECONDS overrides it: the issue's run is 30 s); in the
suite's 6 s, the code before the fix met a deadlock in most runs, one or two each time.
"""

from __future__ import annotations

import glob
import io
import itertools
import os
import random
import secrets
import threading
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy
from sqlalchemy import text

from gateway import bootstrap, platform_api, settings
from gateway.access import Tokens
from gateway.domain.modes import Policy, StockMode
from gateway.logs import configure
from gateway.service.commands import Commands
from gateway.store.port import BatchFailure, Claim
from gateway.store.sql import SqlStore, SqlUnitOfWork
from gateway.worker import Worker
from tests.conftest import FakeClock, postgres_base_url, postgres_schema, toml_value, write_config
from tests.integration.test_platform_api import ENV, TOKEN_ALL, auth, order_body, write_api_config
from tests.support.partner import FakePartner
from tests.support.worker import WORKER_DEFAULTS, wait_until

with warnings.catch_warnings():  # starlette's TestClient names anyio.abc.BlockingPortal, an alias anyio deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

LOAD_SECONDS = float(os.environ.get("GATEWAY_TEST_LOAD_SECONDS", "6"))
CLIENTS = 16  # client threads, each placing a two-SKU order then cancelling it, again and again
SKUS = [f"S{i:02d}" for i in range(20)]
PARTNER_LATENCY = 0.03  # seconds the partner takes to answer a delivery
PARTNER_TOKEN_ENV = "CONTENTION_PARTNER_TOKEN"  # noqa: S105 - the name of a variable, not a secret
SERVER_LOGS = "/var/log/postgresql/*.log"
API_TOML = """
[api]
enabled = true
port = 0

[[api.tokens]]
name = "platform"
token_env = "TOKEN_ALL"
partners = ["*"]
"""
NOW = 1_767_225_600_000_000
LEASE = NOW + 300_000_000


# --- settling and claiming take the outbox rows as commands do --------------------------------------------------


@pytest.fixture
def stores() -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two stores (two workers) on one schema; the ATS of B, then of A, queued: B's row has the smaller id."""
    with postgres_schema(postgres_base_url()) as url:
        first, second = SqlStore.open(url), SqlStore.open(url)
        with first.write() as tx:
            partner_id, _ = tx.partners.sync("p", Policy(StockMode.SIMPLE), NOW)
            tx.outbox.queue_ats(partner_id, [("B", 1, NOW)], None, NOW)
            tx.outbox.queue_ats(partner_id, [("A", 1, NOW)], None, NOW)
        yield first, second
        first.close()
        second.close()


@contextmanager
def command(store: SqlStore) -> Iterator[SqlUnitOfWork]:
    """A command's transaction held open by the test (which queues its values step by step)."""
    with store.write() as tx:
        yield tx


def blocks(tx: SqlUnitOfWork) -> bool:
    """Whether another session waits for a lock this transaction holds."""
    query = text("SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))")
    return bool(tx.connection.execute(query).scalar_one())


def test_a_settle_takes_its_rows_in_key_order_as_commands_do(stores: tuple[SqlStore, SqlStore]) -> None:
    """A settle waiting for a row a command holds (A, replaced while its batch travelled, now replaced again) holds
    none of its batch's rows with a greater key (B): the command, going on in key order to B, is not blocked by it,
    and neither is rolled back as a deadlock (the settle used to mark B delivered first, then wait for A)."""
    first, second = stores
    with first.write() as tx:
        claim = tx.outbox.claim(tx.partners.id_of("p"), "ats", NOW, 10, LEASE, "batch-1")
    assert claim is not None
    with second.write() as tx:  # while the batch travels, a command replaces A: its row leaves the batch
        tx.outbox.queue_ats(tx.partners.id_of("p"), [("A", 2, NOW)], None, NOW)
    settled: Future[int]

    def settle(batch: Claim) -> int:
        with first.write() as tx:
            return tx.outbox.settle_delivered(batch, 200, NOW)

    with ThreadPoolExecutor(1) as pool, command(second) as tx:
        partner_id = tx.partners.id_of("p")
        tx.outbox.queue_ats(partner_id, [("A", 3, NOW)], None, NOW)  # another command replaces A again, B next
        settled = pool.submit(settle, claim)
        wait_until(lambda: blocks(tx), 10, "the settle waits for A")
        tx.outbox.queue_ats(partner_id, [("B", 2, NOW)], None, NOW)
    assert settled.result(timeout=30) == 0  # both replaced meanwhile: nothing of the batch was delivered
    with first.read() as tx:
        rows = tx.outbox.rows(tx.partners.id_of("p"))
    assert [(r.key, r.value, r.batch_id, r.claimed_until) for r in rows] == [("B", 2, None, None), ("A", 3, None, None)]


def test_a_batch_sent_before_is_not_claimed_while_a_command_replaces_one_of_its_rows(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    """Claiming a batch again does not wait for a command holding one of its rows (it may hold rows of a batch
    settled in the same transaction: out of key order): the batch is left for later, then claimed whole."""
    first, second = stores
    with first.write() as tx:
        claim = tx.outbox.claim(tx.partners.id_of("p"), "ats", NOW, 10, LEASE, "sent-before")
        assert claim is not None
        # due again at once, under its key
        tx.outbox.settle_failed(
            claim, BatchFailure(1, 500, "HTTP 500"), next_attempt_at=NOW, max_attempts=10, queued_before=0
        )
    with ThreadPoolExecutor(1) as pool, command(second) as tx:
        tx.outbox.queue_ats(
            tx.partners.id_of("p"), [("A", 2, NOW)], None, NOW
        )  # a command replaces A, not committed yet

        def again() -> Claim | None:
            with first.write() as claiming:
                return claiming.outbox.claim(claiming.partners.id_of("p"), "ats", NOW, 10, LEASE, "new")

        assert pool.submit(again).result(timeout=10) is None  # no wait, and no part of the batch
    with first.write() as tx:  # the command committed: A left the batch, B goes again under its key
        resent = tx.outbox.claim(tx.partners.id_of("p"), "ats", NOW, 10, LEASE, "new")
    assert resent is not None
    assert (resent.batch_id, [m.key for m in resent.messages]) == ("sent-before", ["B"])


# --- a forced deadlock, through the API ------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> Iterator[bootstrap.App]:
    """The API's app on a PostgreSQL schema of its own; EGGS and HAM queued for delivery (pending outbox rows)."""
    with postgres_schema(postgres_base_url()) as url:
        built = bootstrap.build(settings.load(write_api_config(tmp_path, store_url=url), environ={}), clock=FakeClock())
        built.commands.set_stock("acme", "EGGS", 10, None)
        built.commands.set_stock("acme", "HAM", 10, None)
        yield built
        built.close()


@contextmanager
def deadlocking(app: bootstrap.App, order_id: str) -> Iterator[Future[httpx.Response]]:
    """A placement of EGGS and HAM as order `order_id`, posted on a thread, that meets a deadlock on its first run.

    Another transaction holds the EGGS and HAM outbox rows, so the placement waits for them after inserting its
    order; that transaction then inserts the same order, waiting for the placement: a cycle. The other side waits
    30 s before it checks for deadlocks, the placement the server's 1 s: the placement is the one rolled back. Once
    the other side's insert went through, it rolls back, and whatever the placement does next goes through."""
    other = sqlalchemy.create_engine(app.store.engine.url, poolclass=sqlalchemy.pool.NullPool)
    client = TestClient(platform_api.create_app(app, Tokens.from_settings(app.settings, environ=ENV)))
    headers = auth(**{"Idempotency-Key": f"key-{order_id}"})
    body = order_body(order_id, ("EGGS", 1), ("HAM", 1))
    with other.connect() as connection, ThreadPoolExecutor(1) as pool:
        connection.exec_driver_sql("SET deadlock_timeout = '30s'")
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        connection.execute(text("SELECT id FROM outbox WHERE kind = 'ats' AND state = 'pending' FOR UPDATE")).all()
        placing = pool.submit(client.post, "/v1/partners/acme/orders", json=body, headers=headers)
        blocked = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
        wait_until(lambda: connection.execute(blocked, {"pid": pid}).scalar_one(), 30, "the placement waits")
        partner_id = connection.execute(text("SELECT id FROM partners WHERE name = 'acme'")).scalar_one()
        connection.execute(
            text("INSERT INTO orders VALUES (:partner, :order, 'pending', 0, 0)"),
            {"partner": partner_id, "order": order_id},
        )
        connection.rollback()
        yield placing
    other.dispose()


def test_a_placement_rolled_back_by_a_deadlock_is_run_again_and_placed(app: bootstrap.App) -> None:
    """A placement the server rolls back to untie a deadlock is run again (logged as store_contention, without the
    server's DETAIL) and placed once, its Idempotency-Key answering as the placement that went through."""
    log = io.StringIO()
    configure("json", log, "info")
    with deadlocking(app, "O1") as placing:
        answer = placing.result(timeout=30)
    assert answer.status_code == 201, answer.text
    assert [c["sku"] for c in answer.json()["ats_changes"]] == ["EGGS", "HAM"]
    lines = log.getvalue()
    assert '"event": "store_contention"' in lines
    assert "deadlock detected" in lines
    assert "DETAIL" not in lines
    assert "Process " not in lines
    again = TestClient(platform_api.create_app(app, Tokens.from_settings(app.settings, environ=ENV))).post(
        "/v1/partners/acme/orders",
        json=order_body("O1", ("EGGS", 1), ("HAM", 1)),
        headers=auth(**{"Idempotency-Key": "key-O1"}),
    )
    assert (again.status_code, again.text) == (201, answer.text)
    with app.store.read() as tx:
        order = tx.orders.get(tx.partners.id_of("acme"), "O1")
        assert order is not None


def test_a_deadlock_past_the_retries_is_a_503_without_the_servers_detail(app: bootstrap.App) -> None:
    """With no run left, a deadlock is a 503 with Retry-After whose body and log lines carry neither the server's
    DETAIL nor its process ids; nothing of the placement is kept."""
    app.commands = Commands(app.store, app.settings, app.clock, retries=0)
    log = io.StringIO()
    configure("json", log, "info")
    with deadlocking(app, "O2") as placing:
        answer = placing.result(timeout=30)
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    body = answer.json()
    assert body["code"] == "store_busy"
    assert "deadlock detected" in body["detail"]
    for seen in (answer.text, log.getvalue()):
        assert "DETAIL" not in seen
        assert "Process " not in seen
        assert "waits for" not in seen
    with app.store.read() as tx:
        assert tx.orders.get(tx.partners.id_of("acme"), "O2") is None


# --- the load: placements and cancellations over the API while workers deliver -----------------------------------


@contextmanager
def postgres_database() -> Iterator[tuple[str, str]]:
    """A database of its own on the test server (its URL and name), dropped afterwards."""
    base = sqlalchemy.make_url(postgres_base_url())
    name = f"t_{secrets.token_hex(6)}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False), name
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()


class ServerLog:
    """The PostgreSQL server's log (its stderr, as Debian's clusters keep it), read from where it was when made."""

    def __init__(self) -> None:
        found = sorted(glob.glob(SERVER_LOGS), key=os.path.getmtime)
        self.path = Path(found[-1]) if found and os.access(found[-1], os.R_OK) else None
        self.start = self.path.stat().st_size if self.path is not None else 0

    def lines(self, database: str) -> list[str]:
        """The lines about `database` written since (the log line prefix names user@database)."""
        if self.path is None:
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.start)
            written = handle.read().decode("utf-8", "replace")
        return [line for line in written.splitlines() if f"@{database} " in line]


def worker_config(folder: Path, url: str, partner: FakePartner) -> Path:
    """One partner in simple mode delivering ATS to `partner` at once; the API on a free port; pools that fit the
    clients (a thread waiting for a pooled connection is not what this test is about)."""
    api = {"base_url": partner.url, "token_env": PARTNER_TOKEN_ENV, "connect_timeout": 2.0, "read_timeout": 5.0}
    delivery = {"retries": 1, "backoff_initial": 0.05, "backoff_max": 0.5, "breaker_threshold": 1000}
    folder.mkdir(parents=True)
    path = write_config(folder, {"acme": {"stock_mode": "simple", "api": api, "delivery": delivery}}, url)
    options = WORKER_DEFAULTS | {"delivery_interval": 0.05}
    table = "\n".join(f"{key} = {toml_value(value)}" for key, value in options.items())
    store = path.read_text(encoding="utf-8").replace("[store]\n", "[store]\npool_size = 30\n", 1)
    path.write_text(f"{store}\n[worker]\n{table}\n{API_TOML}", encoding="utf-8")
    return path


def clients(ports: list[int], stop: threading.Event) -> Counter[str]:
    """CLIENTS threads placing an order of two SKUs, then cancelling it, until `stop`; what they were answered."""
    answers: Counter[str] = Counter()
    lock = threading.Lock()

    def client(number: int) -> None:
        rng = random.Random(number)
        base = f"http://127.0.0.1:{ports[number % len(ports)]}/v1/partners/acme"
        with httpx.Client(timeout=60, headers=auth(TOKEN_ALL)) as http:
            for i in itertools.count():
                if stop.is_set():
                    return
                order = f"C{number}-{i}"
                body = order_body(order, *((sku, 1) for sku in rng.sample(SKUS, 2)))
                placed = http.post(f"{base}/orders", json=body, headers={"Idempotency-Key": order})
                cancelled = http.post(f"{base}/orders/{order}/status", json={"status": "cancelled"})
                with lock:
                    answers[f"place {placed.status_code}"] += 1
                    answers[f"cancel {cancelled.status_code}"] += 1
                    for answer in (placed, cancelled):
                        if answer.status_code >= 500:
                            answers[answer.text[:300]] += 1

    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(client, n) for n in range(CLIENTS)]:
            future.result()
    return answers


@pytest.mark.parametrize("workers", [1, 2])
def test_placements_and_cancellations_never_deadlock_with_delivery(
    workers: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two-SKU placements and cancellations over the API of one or two workers, while they deliver ATS to a partner
    answering in 30 ms: no deadlock in the server's log nor in the gateway's, every command answered."""
    monkeypatch.setenv(PARTNER_TOKEN_ENV, "partner-token")
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    server_log = ServerLog()
    log = io.StringIO()
    configure("json", log, "info")
    running: list[Worker] = []
    with FakePartner(latency=PARTNER_LATENCY) as partner, postgres_database() as (url, database):
        try:
            for number in range(workers):
                worker = Worker(worker_config(tmp_path / f"w{number}", url, partner))
                worker.start()
                running.append(worker)
            assert running[0].running is not None
            for sku in SKUS:
                running[0].running.app.commands.set_stock("acme", sku, 1_000_000, None)
            stop = threading.Event()
            timer = threading.Timer(LOAD_SECONDS, stop.set)
            timer.start()
            answers = clients([w.api_port or 0 for w in running], stop)
            timer.join()
        finally:
            for worker in running:
                worker.stop()
        deadlocks = [line for line in server_log.lines(database) if "deadlock" in line]
    gateway_lines = log.getvalue()
    assert answers["place 201"] > 20, answers  # a load, not a trickle
    assert set(answers) == {"place 201", "cancel 200"}, answers
    assert not deadlocks, "\n".join(deadlocks[:20])
    assert "deadlock" not in gateway_lines, [line for line in gateway_lines.splitlines() if "deadlock" in line][:5]
    assert '"event": "store_contention"' not in gateway_lines
    assert len(partner.batches) > 10, len(partner.batches)  # the delivery ran beside the commands
