"""What the worker knows of each source (SourceState): when a source is stale, and how /readyz and /metrics say so.

Instants are explicit (gateway.domain.instant: whole microseconds since the epoch), so every allowance is checked
to the microsecond on both sides.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from gateway import bootstrap, settings
from gateway.domain import instant
from gateway.domain.messages import MessageKind
from gateway.domain.orders import RequestedLine
from gateway.store.sql import SqlStore
from gateway.worker import SourceState, Worker, metrics
from tests.conftest import FakeClock, write_config

SECOND = 1_000_000
T0 = instant.parse("2026-03-01T08:00:00Z")


def at(seconds: float) -> int:
    """T0 plus `seconds`."""
    return T0 + round(seconds * SECOND)


def state(
    interval: float = 60.0, last_ok: int | None = None, last_error: str | None = None, last_error_at: int | None = None
) -> SourceState:
    """An SFTP source's state, the worker having started at T0."""
    return SourceState("acme", "drop", "sftp", interval, last_ok, last_error, last_error_at, started=T0)


# --- stale -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "factor", "allowance"),
    [
        (60.0, 3.0, 180.0),  # interval x factor
        (20.0, 1.5, 30.0),
        (1.0, 3.0, 10.0),  # never less than ten seconds
        (0.5, 1.0, 10.0),
        (5.0, 2.0, 10.0),  # exactly ten
    ],
)
def test_a_source_never_polled_is_not_stale_within_its_allowance(
    interval: float, factor: float, allowance: float
) -> None:
    source = state(interval)
    assert not source.stale(T0, factor)
    assert not source.stale(at(allowance / 2), factor)
    assert not source.stale(at(allowance), factor)  # the allowance itself is still fine
    assert source.stale(at(allowance) + 1, factor)  # one microsecond more is not


def test_a_source_whose_first_poll_failed_is_stale_at_once() -> None:
    source = state(60.0, last_error="connection refused", last_error_at=at(1))
    assert source.stale(at(1), 3.0)
    assert source.stale(at(2), 3.0)
    assert source.stale(at(1000), 3.0)


def test_a_source_that_worked_then_failed_is_stale_only_after_the_allowance_from_its_last_success() -> None:
    source = state(60.0, last_ok=at(5))
    assert not source.stale(at(100), 3.0)
    source.last_error, source.last_error_at = "timed out", at(65)  # the next poll failed
    assert not source.stale(at(65), 3.0)
    assert not source.stale(at(185), 3.0)  # 180 s after the success
    assert source.stale(at(185) + 1, 3.0)


def test_a_success_restarts_the_allowance() -> None:
    source = state(60.0, last_ok=at(5))
    assert source.stale(at(200), 3.0)
    source.last_ok = at(200)
    assert not source.stale(at(200), 3.0)
    assert not source.stale(at(380), 3.0)
    assert source.stale(at(380) + 1, 3.0)


def test_a_source_that_worked_is_not_stale_because_of_an_old_error() -> None:
    """An error before the first success does not make the source stale once it has succeeded."""
    source = state(60.0, last_error="refused", last_error_at=at(1), last_ok=at(30))
    assert not source.stale(at(30), 3.0)
    assert not source.stale(at(210), 3.0)
    assert source.stale(at(210) + 1, 3.0)


def test_the_allowance_scales_with_the_factor() -> None:
    source = state(60.0, last_ok=T0)
    assert source.stale(at(121), 2.0)
    assert not source.stale(at(121), 3.0)


# --- as_dict ---------------------------------------------------------------------------------------------------


def test_as_dict_of_a_source_never_polled() -> None:
    assert state(60.0).as_dict(at(30), 3.0) == {
        "partner": "acme",
        "source": "drop",
        "type": "sftp",
        "last_ok": None,
        "seconds_since_ok": None,
        "last_error": None,
        "last_error_at": None,
        "stale": False,
    }
    assert state(60.0).as_dict(at(181), 3.0)["stale"] is True


def test_as_dict_of_a_source_that_worked_then_failed() -> None:
    source = state(60.0, last_ok=at(10.5), last_error="timed out", last_error_at=at(70))
    assert source.as_dict(at(100), 3.0) == {
        "partner": "acme",
        "source": "drop",
        "type": "sftp",
        "last_ok": "2026-03-01T08:00:10.500000Z",
        "seconds_since_ok": 89.5,
        "last_error": "timed out",
        "last_error_at": "2026-03-01T08:01:10Z",
        "stale": False,
    }
    later = source.as_dict(at(200), 3.0)
    assert later["seconds_since_ok"] == 189.5
    assert later["stale"] is True


def test_as_dict_of_a_source_whose_first_poll_failed() -> None:
    described = state(60.0, last_error="auth failed", last_error_at=at(2)).as_dict(at(3), 3.0)
    assert described["stale"] is True
    assert described["seconds_since_ok"] is None
    assert described["last_error"] == "auth failed"
    assert described["last_error_at"] == "2026-03-01T08:00:02Z"


# --- the worker's readiness and gauges, from these states --------------------------------------------------------


@pytest.fixture
def worker(tmp_path: Path) -> Worker:
    """A Worker on a migrated SQLite store whose partner is registered; nothing started (no threads)."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = write_config(tmp_path, {"acme": {"stock_mode": "simple"}}, store_url=url)
    clock = FakeClock("2026-03-01T08:00:00+00:00")
    made = Worker(config, clock=clock)
    made.store = SqlStore.open(made.settings.store.url)
    bootstrap.sync_partners(made.store, made.settings, clock)
    return made


def test_ready_names_the_stale_sources_and_their_last_error(worker: Worker) -> None:
    assert worker.store is not None
    clock = worker.clock
    assert isinstance(clock, FakeClock)
    try:
        worker.sources.states = {
            ("acme", "drop"): SourceState("acme", "drop", "folder", 10.0, last_ok=at(0), started=T0),
            ("acme", "sftp"): SourceState("acme", "sftp", "sftp", 60.0, started=T0),
        }
        assert worker.ready() == (True, {"problems": [], "sources": worker.source_states()})
        worker.sources.states[("acme", "sftp")].last_error = "connection refused"
        clock.advance(31)  # the folder's 30 s are over too
        ok, detail = worker.ready()
        assert not ok
        assert detail["problems"] == [
            "source acme/drop: no successful poll for 31 s",
            "source acme/sftp: no successful poll yet; last error: connection refused",
        ]
        assert [s["stale"] for s in detail["sources"]] == [True, True]
    finally:
        worker.store.close()


def test_ready_reports_a_store_that_does_not_answer(worker: Worker, tmp_path: Path) -> None:
    assert worker.store is not None
    try:
        assert worker.ready()[0]
        worker.store.engine.dispose()
        (tmp_path / "gateway.db").unlink()
        (tmp_path / "gateway.db").mkdir()  # the file is gone and cannot be made again
        ok, detail = worker.ready()
        assert not ok
        assert detail["problems"] == ["store: StoreError: the store failed: unable to open database file"]
    finally:
        worker.store.close()


def test_the_scrape_gauges_give_seconds_since_success_and_the_outbox(worker: Worker) -> None:
    assert worker.store is not None
    clock = worker.clock
    assert isinstance(clock, FakeClock)
    try:
        worker.sources.states = {
            ("acme", "drop"): SourceState("acme", "drop", "folder", 10.0, last_ok=at(5), started=T0),
            ("acme", "sftp"): SourceState("acme", "sftp", "sftp", 60.0, started=T0),  # never succeeded: since start
        }
        clock.advance(42.5)
        worker.metrics.add_collector(worker.collect_gauges)
        registry = worker.metrics.registry
        since = "gateway_source_seconds_since_success"
        assert registry.get_sample_value(since, {"partner": "acme", "source": "drop"}) == 37.5
        assert registry.get_sample_value(since, {"partner": "acme", "source": "sftp"}) == 42.5
        assert registry.get_sample_value("gateway_outbox_oldest_seconds", {"partner": "acme"}) == 0.0
        text = generate_latest(registry).decode()
        for family in ("gateway_outbox_depth", "gateway_outbox_oldest_seconds", "gateway_outbox_dead"):
            assert f"# TYPE {family} gauge" in text
    finally:
        worker.store.close()


def test_the_scrape_gives_each_sources_interval_and_allowance_and_each_partners_limits_and_breaker(
    tmp_path: Path,
) -> None:
    """What the alerting rules compare with: a source's interval and allowance (staleness_factor intervals, at
    least 10 s, as /readyz), the oldest message's age the partner tolerates, and whether its breaker is open."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    partners = {
        "acme": {"stock_mode": "simple", "delivery": {"alert_age_minutes": 2.5}},
        "bolt": {"stock_mode": "simple"},
    }
    config = write_config(tmp_path, partners, store_url=url)
    config.write_text(config.read_text(encoding="utf-8") + "\n[worker]\nstaleness_factor = 4\n", encoding="utf-8")
    clock = FakeClock("2026-03-01T08:00:00+00:00")
    worker = Worker(config, clock=clock)
    worker.store = SqlStore.open(worker.settings.store.url)
    bootstrap.sync_partners(worker.store, worker.settings, clock)
    try:
        worker.sources.states = {
            ("acme", "drop"): SourceState("acme", "drop", "folder", 1.0, started=T0),
            ("acme", "sftp"): SourceState("acme", "sftp", "sftp", 60.0, started=T0),
        }
        with worker.store.write() as tx:
            tx.partners.set_breaker(tx.partners.id_of("bolt"), at(-5))  # past: open until a probe goes through
        worker.metrics.add_collector(worker.collect_gauges)
        registry = worker.metrics.registry
        interval, allowance = "gateway_source_poll_interval_seconds", "gateway_source_stale_after_seconds"
        assert registry.get_sample_value(interval, {"partner": "acme", "source": "drop"}) == 1.0
        assert registry.get_sample_value(interval, {"partner": "acme", "source": "sftp"}) == 60.0
        assert registry.get_sample_value(allowance, {"partner": "acme", "source": "drop"}) == 10.0  # at least 10 s
        assert registry.get_sample_value(allowance, {"partner": "acme", "source": "sftp"}) == 240.0
        limit = "gateway_outbox_oldest_limit_seconds"
        assert registry.get_sample_value(limit, {"partner": "acme"}) == 150.0
        assert registry.get_sample_value(limit, {"partner": "bolt"}) == 900.0  # the default, 15 minutes
        breaker = "gateway_delivery_breaker_open"
        assert registry.get_sample_value(breaker, {"partner": "acme"}) == 0.0
        # past its pause with nothing waiting behind it (all of it dead, say): no batch will close it, and it
        # holds nothing back
        assert registry.get_sample_value(breaker, {"partner": "bolt"}) == 0.0
        with worker.store.write() as tx:
            tx.partners.set_breaker(tx.partners.id_of("bolt"), clock() + 300_000_000)  # paused for 5 minutes
        assert registry.get_sample_value(breaker, {"partner": "bolt"}) == 1.0
        with worker.store.write() as tx:
            tx.partners.set_breaker(tx.partners.id_of("bolt"), None)  # a batch went through
        assert registry.get_sample_value(breaker, {"partner": "bolt"}) == 0.0
    finally:
        worker.store.close()


def test_the_scrape_counts_each_partners_oversold_skus(tmp_path: Path) -> None:
    """gateway_oversold_skus{partner}: the SKUs whose level is below their allocation, 0 for a partner with none."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = write_config(tmp_path, {"acme": {"stock_mode": "advanced"}, "bolt": {"stock_mode": "advanced"}}, url)
    clock = FakeClock("2026-03-01T08:00:00+00:00")
    app = bootstrap.build(settings.load(config, environ={}), clock=clock)
    try:
        for partner in ("acme", "bolt"):
            for sku in ("A", "B", "C"):
                app.commands.set_stock(partner, sku, 10, None)
            app.commands.place(partner, "O1", [RequestedLine(sku, 8) for sku in ("A", "B", "C")])
        clock.advance()
        for sku in ("A", "B"):
            app.commands.set_stock("acme", sku, 5, None)
    finally:
        app.close()
    worker = Worker(config, clock=clock)
    worker.store = SqlStore.open(worker.settings.store.url)
    try:
        worker.metrics.add_collector(worker.collect_gauges)
        registry = worker.metrics.registry
        assert registry.get_sample_value("gateway_oversold_skus", {"partner": "acme"}) == 2
        assert registry.get_sample_value("gateway_oversold_skus", {"partner": "bolt"}) == 0
        assert "# TYPE gateway_oversold_skus gauge" in generate_latest(registry).decode()
    finally:
        worker.store.close()


# --- start ------------------------------------------------------------------------------------------------------


def test_the_one_worker_of_a_sqlite_store_frees_the_claims_a_dead_worker_left(tmp_path: Path) -> None:
    """A batch claimed by a worker that was killed is nobody's once the next worker holds the store: it is due at
    once (keeping its batch id, so the re-send carries the same Idempotency-Key), not after its lease."""
    config = write_config(tmp_path, {"acme": {"stock_mode": "simple"}})
    clock = FakeClock()
    app = bootstrap.build(settings.load(config, environ={}), clock=clock)
    app.commands.set_stock("acme", "A", 5, None)
    with app.store.write() as tx:
        claim = tx.outbox.claim(
            tx.partners.id_of("acme"), "ats", clock(), 10, clock() + 300 * SECOND, "left-by-the-dead"
        )
    assert claim is not None
    app.close()

    worker = Worker(config, clock=clock)
    worker.settings = worker.settings.model_copy(
        update={"worker": worker.settings.worker.model_copy(update={"health_port": None})}
    )
    worker.start()
    try:
        assert worker.store is not None
        with worker.store.read() as tx:
            [row] = tx.outbox.rows(tx.partners.id_of("acme"))
        assert (row.claimed_until, row.batch_id) == (None, "left-by-the-dead")
    finally:
        worker.stop()


def test_the_oldest_age_counts_routed_kinds_only_and_a_breaker_past_its_pause_is_open_while_they_wait(
    tmp_path: Path,
) -> None:
    """A partner with no route for its ATS messages shows no age (they are never sent: no alert would ever
    clear); with a route the same message ages, and a breaker past its pause stays open while it waits."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = write_config(tmp_path, {"acme": {"stock_mode": "simple"}}, store_url=url)
    clock = FakeClock("2026-03-01T08:00:00+00:00")
    app = bootstrap.build(settings.load(config, environ={}), clock=clock)
    try:
        app.commands.set_stock("acme", "A", 5, None)  # queues ATS A=5
        with app.store.write() as tx:
            tx.partners.set_breaker(tx.partners.id_of("acme"), clock() - 5_000_000)
        clock.advance(600)

        def sample(routed: frozenset[MessageKind], name: str) -> float:
            watched = {"acme": metrics.Watched(900.0, routed)}
            for family in metrics.scrape_gauges(clock(), [], app.store, watched):
                if family.name == name:
                    return float(family.samples[0].value)
            raise AssertionError(name)

        assert sample(frozenset(), "gateway_outbox_oldest_seconds") == 0.0
        assert sample(frozenset(), "gateway_delivery_breaker_open") == 0.0
        assert sample(frozenset({MessageKind.ATS}), "gateway_outbox_oldest_seconds") == 600.0
        assert sample(frozenset({MessageKind.ATS}), "gateway_delivery_breaker_open") == 1.0
    finally:
        app.close()
