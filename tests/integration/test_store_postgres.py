"""What several workers sharing one PostgreSQL store rely on: claims that skip each other, a lock per source, an
inbound item holding its partner alone, commands locking their SKUs. Each test in a schema of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import bootstrap, settings
from gateway.domain.modes import Policy, StockMode
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.store.sql import SqlStore, lock_key
from tests.conftest import postgres_base_url, postgres_schema, write_config
from tests.support.worker import wait_until

NOW = 1_767_225_600_000_000
LEASE = NOW + 300_000_000


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_schema(postgres_base_url()) as found:
        yield found


@pytest.fixture
def stores(url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database: two workers."""
    first, second = SqlStore.open(url), SqlStore.open(url)
    with first.write() as tx:
        partner_id, _ = tx.partners.sync("p", Policy(StockMode.ADVANCED), NOW)
        tx.outbox.queue_ats(partner_id, [(f"S{i:03}", i, NOW) for i in range(30)], None, NOW)
    yield first, second
    first.close()
    second.close()


def test_two_workers_claiming_at_once_get_disjoint_batches(stores: tuple[SqlStore, SqlStore]) -> None:
    """A batch being claimed by one worker is skipped by the other (FOR UPDATE SKIP LOCKED), not waited for."""
    first, second = stores
    with first.write() as one:
        claim_one = one.outbox.claim(one.partners.id_of("p"), "ats", NOW, 10, LEASE, "batch-1")
        with second.write() as two:  # the first transaction is still open: its rows are locked
            claim_two = two.outbox.claim(two.partners.id_of("p"), "ats", NOW, 10, LEASE, "batch-2")
    assert claim_one is not None
    assert claim_two is not None
    assert len(claim_one.ids) == len(claim_two.ids) == 10
    assert not set(claim_one.ids) & set(claim_two.ids)
    with second.write() as tx:  # both committed: the rest is left, and nothing claimed twice
        rest = tx.outbox.claim(tx.partners.id_of("p"), "ats", NOW, 100, LEASE, "batch-3")
    assert rest is not None
    assert len(rest.ids) == 10
    assert not set(rest.ids) & (set(claim_one.ids) | set(claim_two.ids))


def test_a_claim_whose_lease_ran_out_goes_again_under_its_key(stores: tuple[SqlStore, SqlStore]) -> None:
    """A worker died holding a batch: after the lease, another worker takes the same batch with the same id."""
    first, second = stores
    with first.write() as tx:
        taken = tx.outbox.claim(tx.partners.id_of("p"), "ats", NOW, 10, LEASE, "dead-worker")
    assert taken is not None
    with second.write() as tx:
        before = tx.outbox.claim(tx.partners.id_of("p"), "ats", NOW, 100, LEASE, "other")
    assert before is not None
    assert not set(before.ids) & set(taken.ids)
    with second.write() as tx:
        after = tx.outbox.claim(tx.partners.id_of("p"), "ats", LEASE + 1, 100, LEASE + 600_000_000, "ignored")
    # the earlier batch, un-settled, was sent once: it goes again whole, under its own id (the Idempotency-Key)
    assert after is not None
    assert after.batch_id in {"dead-worker", "other"}


def test_a_source_is_polled_by_one_worker_at_a_time(stores: tuple[SqlStore, SqlStore]) -> None:
    """The source lock is taken without waiting; freed when its holder lets go or its connection goes."""
    first, second = stores
    with first.source_lock("source:p/drop") as mine:
        assert mine
        with second.source_lock("source:p/drop") as theirs, second.source_lock("source:p/other") as other:
            assert not theirs
            assert other  # another source is free
    with second.source_lock("source:p/drop") as theirs:
        assert theirs
    with first.source_lock("source:p/drop") as mine:
        assert mine
        _kill_lock_holder(second, "source:p/drop")  # the holder's session ends (a worker killed): its lock goes
        with second.source_lock("source:p/drop") as theirs:
            assert theirs
    # and the holder, finding its connection gone, lets go without an error


def _kill_lock_holder(store: SqlStore, source: str) -> None:
    """End the session holding this store's lock on `source` (pg_locks shows the two keys as unsigned oids)."""
    space = store._space
    with store.engine.connect() as connection:
        killed = connection.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %(first)s::bigint::oid AND objid = %(second)s::bigint::oid AND objsubid = 2",
            {"first": space.source & 0xFFFFFFFF, "second": lock_key(source) & 0xFFFFFFFF},
        ).all()
    assert killed == [(True,)]


def test_an_inbound_item_holds_its_partner_and_commands_wait_for_it(stores: tuple[SqlStore, SqlStore]) -> None:
    """lock_partner (an item) excludes lock_keys (a command) on another connection until the item commits."""
    first, second = stores
    waited = threading.Event()
    done = threading.Event()

    def command() -> None:
        with second.write() as tx:
            waited.set()
            tx.locks.keys(tx.partners.id_of("p"), ["O1"], ["S001"])
        done.set()

    with first.write() as item:
        item.locks.partner(item.partners.id_of("p"))
        thread = threading.Thread(target=command)
        thread.start()
        wait_until(waited.is_set, 10, "the command started")
        assert not done.wait(0.3)  # held: the command cannot take the partner
    thread.join(10)
    assert done.is_set()


def test_commands_on_other_skus_run_side_by_side_and_on_the_same_sku_in_turn(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    """Two commands share the partner; the same SKU is locked by one of them at a time."""
    first, second = stores
    with first.write() as one:
        assert one.locks.keys(one.partners.id_of("p"), ["O1"], ["S001", "S002"])
        assert not one.locks.keys(one.partners.id_of("p"), ["O1"], ["S002"])  # held already: nothing new taken
        with second.write() as two:
            assert two.locks.keys(two.partners.id_of("p"), ["O2"], ["S003"])  # no wait: other keys
        blocked = threading.Event()
        finished = threading.Event()

        def same_sku() -> None:
            with second.write() as two:
                blocked.set()
                two.locks.keys(two.partners.id_of("p"), ["O3"], ["S002"])
            finished.set()

        thread = threading.Thread(target=same_sku)
        thread.start()
        wait_until(blocked.is_set, 10, "the second command started")
        assert not finished.wait(0.3)
    thread.join(10)
    assert finished.is_set()


def test_two_stores_in_two_schemas_never_share_a_lock(url: str) -> None:
    """Advisory locks are per database: each store draws its keys from its schema, so tests (or two
    installations in one database) never wait on each other."""
    with postgres_schema(postgres_base_url()) as other_url:
        here, there = SqlStore.open(url), SqlStore.open(other_url)
        try:
            with here.source_lock("source:p/drop") as mine, there.source_lock("source:p/drop") as theirs:
                assert mine
                assert theirs
        finally:
            here.close()
            there.close()


def test_workers_starting_together_register_a_new_partner_once(url: str) -> None:
    """Four stores registering the same new partner at once: one row, one id, no conflict."""
    stores = [SqlStore.open(url) for _ in range(4)]
    barrier = threading.Barrier(4)
    ids: list[int] = []
    errors: list[BaseException] = []

    def register(store: SqlStore) -> None:
        try:
            barrier.wait(10)
            with store.write() as tx:
                ids.append(tx.partners.sync("new", Policy(StockMode.SIMPLE), NOW)[0])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    for store in stores:
        store.close()
    assert errors == []
    assert len(ids) == 4
    assert len(set(ids)) == 1


def test_status_moves_and_confirmations_of_one_order_never_deadlock(url: str, tmp_path: Path) -> None:
    """set_status takes its order, then its SKUs; confirm takes order and SKU at once: every order key is taken
    before every SKU key, so the two never wait on each other in a cycle (PostgreSQL would abort one)."""
    config = write_config(tmp_path, {"p": {"stock_mode": "advanced"}}, url)
    first = bootstrap.build(settings.load(config, environ={}))
    second = bootstrap.build(settings.load(config, environ={}))
    try:
        orders = [f"O{i:02}" for i in range(40)]
        for i, order_id in enumerate(orders):
            first.commands.set_stock("p", f"S{i:02}", 10, None)
            first.commands.place("p", order_id, [RequestedLine(f"S{i:02}", 1)])
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def moves() -> None:
            for order_id in orders:
                barrier.wait(10)
                try:
                    first.commands.set_status("p", order_id, OrderStatus.CONFIRMED)
                except BaseException as exc:
                    errors.append(exc)

        def confirmations() -> None:
            for i, order_id in enumerate(orders):
                barrier.wait(10)
                try:
                    second.commands.confirm("p", order_id, f"S{i:02}", 1, NOW)
                except BaseException as exc:
                    errors.append(exc)

        threads = [threading.Thread(target=moves), threading.Thread(target=confirmations)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
    finally:
        first.close()
        second.close()


def test_the_server_drops_a_dead_workers_connections_and_locks_within_a_minute(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    """TCP keepalives on every connection of the store (pooled and source locks): a machine that died without a
    word loses its locks after 30 s idle + 3 probes 10 s apart, not after the kernel's two hours."""
    first, _ = stores
    with first.read() as tx:
        shown = [
            tx.connection.exec_driver_sql(f"SHOW tcp_keepalives_{name}").scalar()
            for name in ("idle", "interval", "count")
        ]
    assert shown == ["30", "10", "3"]
    with first.source_lock("source:p/drop") as mine:
        assert mine
        assert first._sources.engine is not None
        with first._sources.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW tcp_keepalives_idle").scalar() == "30"
