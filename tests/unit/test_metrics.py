"""The worker's metrics (counted from its log events, gauges computed at scrape time) and its health endpoint.

The endpoint is a real HealthServer on 127.0.0.1 and port 0, asked with urllib.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import Metric

from gateway import logs
from gateway.worker.health import HealthServer
from gateway.worker.metrics import Metrics, gauge


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


def feed(metrics: Metrics, event: str, **fields: Any) -> None:
    """One event through the processor, as structlog hands it over."""
    record = {"event": event, **fields}
    assert metrics.observe(None, "info", record) is record  # the event goes on to the renderer unchanged
    assert record == {"event": event, **fields}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


# --- counters fed by events ----------------------------------------------------------------------------------


def test_applied_files_count_items_rows_refusals_and_duration(metrics: Metrics) -> None:
    feed(metrics, "file_applied", partner="acme", kind="stock", rows_applied=120, rows_refused=3, duration_ms=40)
    feed(metrics, "file_applied", partner="acme", kind="stock", rows_applied=30, rows_refused=0, duration_ms=1500)
    feed(metrics, "file_applied", partner="acme", kind="orders", rows_applied=2, rows_refused=1, duration_ms=5)
    stock = {"partner": "acme", "kind": "stock"}
    assert value(metrics, "gateway_items_total", **stock, outcome="applied") == 2
    assert value(metrics, "gateway_items_total", partner="acme", kind="orders", outcome="applied") == 1
    assert value(metrics, "gateway_rows_applied_total", **stock) == 150
    assert value(metrics, "gateway_rows_refused_total", **stock) == 3
    assert value(metrics, "gateway_rows_applied_total", partner="acme", kind="orders") == 2
    assert value(metrics, "gateway_ingest_duration_seconds_count", **stock) == 2
    assert value(metrics, "gateway_ingest_duration_seconds_sum", **stock) == pytest.approx(1.54)
    assert value(metrics, "gateway_ingest_duration_seconds_bucket", **stock, le="0.05") == 1
    assert value(metrics, "gateway_ingest_duration_seconds_bucket", **stock, le="2.5") == 2


@pytest.mark.parametrize(
    ("event", "outcome"),
    [
        ("file_rejected", "rejected"),
        ("file_duplicate", "duplicate"),
        ("file_quarantined", "quarantined"),
        ("page_rejected", "rejected"),
        ("page_duplicate", "duplicate"),
    ],
)
def test_other_item_outcomes_count_items_but_no_rows(metrics: Metrics, event: str, outcome: str) -> None:
    feed(metrics, event, partner="acme", kind="stock", rows_applied=7, rows_refused=2)
    feed(metrics, event, partner="acme", kind="stock")
    assert value(metrics, "gateway_items_total", partner="acme", kind="stock", outcome=outcome) == 2
    assert value(metrics, "gateway_rows_applied_total", partner="acme", kind="stock") is None
    assert value(metrics, "gateway_rows_refused_total", partner="acme", kind="stock") is None
    assert value(metrics, "gateway_items_total", partner="acme", kind="stock", outcome="applied") is None


def test_applied_pages_count_like_files(metrics: Metrics) -> None:
    feed(metrics, "page_applied", partner="shop", kind="stock", rows_applied=500, rows_refused=0, duration_ms=12)
    feed(metrics, "page_applied", partner="shop", kind="acknowledgements", rows_applied=4, rows_refused=1)
    assert value(metrics, "gateway_items_total", partner="shop", kind="stock", outcome="applied") == 1
    assert value(metrics, "gateway_rows_applied_total", partner="shop", kind="stock") == 500
    assert value(metrics, "gateway_rows_refused_total", partner="shop", kind="acknowledgements") == 1
    assert value(metrics, "gateway_ingest_duration_seconds_count", partner="shop", kind="acknowledgements") is None


def test_missing_or_odd_numbers_count_as_zero(metrics: Metrics) -> None:
    feed(metrics, "file_applied", partner="acme", kind="stock", rows_applied=None, rows_refused="3")
    feed(metrics, "file_applied", partner="acme", kind="stock", rows_applied=True)
    feed(metrics, "file_applied", partner="acme", kind="stock")
    assert value(metrics, "gateway_items_total", partner="acme", kind="stock", outcome="applied") == 3
    assert value(metrics, "gateway_rows_applied_total", partner="acme", kind="stock") == 0
    assert value(metrics, "gateway_rows_refused_total", partner="acme", kind="stock") == 0


def test_deliveries_retries_and_dead_letters(metrics: Metrics) -> None:
    ats = {"partner": "acme", "kind": "ats"}
    feed(metrics, "delivery_attempt", **ats, outcome="failed", status=503)
    feed(metrics, "delivery_attempt", **ats, outcome="failed", status=None)
    feed(metrics, "delivery_attempt", **ats, outcome="delivered", status=200)
    feed(metrics, "delivery_attempt", partner="acme", kind="order_export", outcome="delivered")
    feed(metrics, "delivery_retry", **ats, attempt=1)
    feed(metrics, "delivery_retry", **ats, attempt=2)
    feed(metrics, "delivery_dead", **ats, messages=7)
    feed(metrics, "delivery_dead", **ats, messages=3)
    feed(metrics, "delivery_dead", partner="acme", kind="order_closed")  # no count: one message
    assert value(metrics, "gateway_delivery_attempts_total", **ats, outcome="failed") == 2
    assert value(metrics, "gateway_delivery_attempts_total", **ats, outcome="delivered") == 1
    export = {"partner": "acme", "kind": "order_export"}
    assert value(metrics, "gateway_delivery_attempts_total", **export, outcome="delivered") == 1
    assert value(metrics, "gateway_delivery_retries_total", **ats) == 2
    assert value(metrics, "gateway_delivery_dead_total", **ats) == 10
    assert value(metrics, "gateway_delivery_dead_total", partner="acme", kind="order_closed") == 1


def test_what_retention_purged_counts_by_what_and_a_dry_run_counts_nothing(metrics: Metrics) -> None:
    """`retention_purged` events add their count to gateway_purged_total{what}, over partners; a dry run's do not."""
    feed(metrics, "retention_purged", partner="acme", what="outbox", count=500, days=7, dry_run=False)
    feed(metrics, "retention_purged", partner="other", what="outbox", count=3, days=7, dry_run=False)
    feed(metrics, "retention_purged", partner="acme", what="ledger", count=0, days=90, dry_run=False)
    feed(metrics, "retention_purged", partner="acme", what="files", count=9, days=30, dry_run=True)
    assert value(metrics, "gateway_purged_total", what="outbox") == 503
    assert value(metrics, "gateway_purged_total", what="ledger") == 0
    assert value(metrics, "gateway_purged_total", what="files") is None


def test_other_events_count_nothing(metrics: Metrics) -> None:
    for event in ("file_archived", "worker_started", "delivery_breaker_opened", "transport_failed"):
        feed(metrics, event, partner="acme", kind="stock", rows_applied=9, messages=4)
    text = generate_latest(metrics.registry).decode()
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples == []


def test_expected_kinds_show_their_rejected_and_quarantined_items_at_zero_before_the_first(
    metrics: Metrics,
) -> None:
    """A series born at 1 would hide the first rejection from increase() (the GatewayItemsRejected alert)."""
    metrics.expect({"acme": ["stock", "bundle"], "bolt": ["acknowledgements"]})
    for partner, kind in (("acme", "stock"), ("acme", "bundle"), ("bolt", "acknowledgements")):
        for outcome in ("rejected", "quarantined"):
            assert value(metrics, "gateway_items_total", partner=partner, kind=kind, outcome=outcome) == 0
        assert value(metrics, "gateway_items_total", partner=partner, kind=kind, outcome="applied") is None
    assert value(metrics, "gateway_items_total", partner="bolt", kind="stock", outcome="rejected") is None
    feed(metrics, "file_rejected", partner="acme", kind="stock")
    metrics.expect({"acme": ["stock"]})  # a configuration launched again keeps the counts
    assert value(metrics, "gateway_items_total", partner="acme", kind="stock", outcome="rejected") == 1


def test_the_processor_counts_events_logged_through_structlog(metrics: Metrics) -> None:
    stream = io.StringIO()
    logs.configure("json", stream, "debug", extra=[metrics.observe])
    try:
        log = logs.get("gateway.service.ingest").bind(partner="acme", kind="stock")
        log.info("file_applied", rows_applied=4, rows_refused=1, duration_ms=20, password="hidden-pw")  # noqa: S106 - a made-up value
        log.warning("file_rejected", reason="bad")
        logs.get("gateway.service.publish").bind(partner="acme", kind="ats").error("delivery_dead", messages=2)
    finally:
        logs.configure("json", None, "error")
    assert value(metrics, "gateway_items_total", partner="acme", kind="stock", outcome="applied") == 1
    assert value(metrics, "gateway_items_total", partner="acme", kind="stock", outcome="rejected") == 1
    assert value(metrics, "gateway_rows_applied_total", partner="acme", kind="stock") == 4
    assert value(metrics, "gateway_delivery_dead_total", partner="acme", kind="ats") == 2
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["file_applied", "file_rejected", "delivery_dead"]
    assert lines[0]["password"] == logs.REDACTED  # metrics sit before redaction, which still runs


def test_counters_do_not_depend_on_the_log_level(metrics: Metrics) -> None:
    logs.configure("json", io.StringIO(), "warning", extra=[metrics.observe])
    try:
        logs.get("test").info("file_applied", partner="acme", kind="stock", rows_applied=4)
    finally:
        logs.configure("json", None, "error")
    assert value(metrics, "gateway_items_total", partner="acme", kind="stock", outcome="applied") == 1


# --- gauges computed at scrape time --------------------------------------------------------------------------


def test_a_collector_appears_in_the_exposition_and_runs_at_each_scrape(metrics: Metrics) -> None:
    depth = {"value": 3.0}
    scrapes: list[int] = []

    def collect() -> Iterator[Metric]:
        scrapes.append(1)
        family = gauge("gateway_outbox_depth", "Messages waiting for delivery", ["partner", "kind"])
        family.add_metric(["acme", "ats"], depth["value"])
        yield family

    metrics.add_collector(collect)
    scrapes.clear()  # registering may look at the collector once
    first = generate_latest(metrics.registry).decode()
    depth["value"] = 5.0
    second = generate_latest(metrics.registry).decode()
    assert "# TYPE gateway_outbox_depth gauge" in first
    assert 'gateway_outbox_depth{kind="ats",partner="acme"} 3.0' in first
    assert 'gateway_outbox_depth{kind="ats",partner="acme"} 5.0' in second
    assert len(scrapes) == 2
    assert metrics.registry.get_sample_value("gateway_outbox_depth", {"partner": "acme", "kind": "ats"}) == 5.0


# --- the health endpoint -------------------------------------------------------------------------------------

Ready = Callable[[], tuple[bool, dict[str, Any]]]


def ready() -> tuple[bool, dict[str, Any]]:
    return True, {"problems": [], "sources": []}


class Endpoint:
    """A running HealthServer whose readiness answer a test sets."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.answer: Ready = ready
        self.server = HealthServer("127.0.0.1", 0, self._ready, self.metrics.registry)

    def _ready(self) -> tuple[bool, dict[str, Any]]:
        return self.answer()

    def get(self, path: str) -> tuple[int, str, bytes]:
        url = f"http://127.0.0.1:{self.server.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.headers["Content-Type"], response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers["Content-Type"], exc.read()


@pytest.fixture(scope="module")
def server() -> Iterator[Endpoint]:
    """One server for the module (stopping one takes half a second)."""
    running = Endpoint()
    assert running.server.port > 0  # port 0: the system chose one
    running.server.start()
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture
def endpoint(server: Endpoint) -> Iterator[Endpoint]:
    server.answer = ready
    yield server
    server.answer = ready


def test_healthz_answers_alive(endpoint: Endpoint) -> None:
    status, content_type, body = endpoint.get("/healthz")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"status": "alive"}
    assert endpoint.get("/healthz?probe=docker")[0] == 200


def test_readyz_is_200_when_ready(endpoint: Endpoint) -> None:
    sources = [{"partner": "acme", "source": "drop", "stale": False}]
    endpoint.answer = lambda: (True, {"problems": [], "sources": sources})
    status, content_type, body = endpoint.get("/readyz")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"ready": True, "problems": [], "sources": sources}


def test_readyz_is_503_with_the_problems_when_not_ready(endpoint: Endpoint) -> None:
    problems = ["store: OperationalError: unable to open database file", "source acme/drop: no successful poll"]
    endpoint.answer = lambda: (False, {"problems": problems, "sources": []})
    status, _, body = endpoint.get("/readyz")
    assert status == 503
    assert json.loads(body) == {"ready": False, "problems": problems, "sources": []}
    endpoint.answer = ready  # asked again at each request
    assert endpoint.get("/readyz")[0] == 200


def test_readyz_is_503_with_the_error_when_the_readiness_check_raises(endpoint: Endpoint) -> None:
    def broken() -> tuple[bool, dict[str, Any]]:
        raise RuntimeError("the store vanished")

    endpoint.answer = broken
    status, _, body = endpoint.get("/readyz")
    assert status == 503
    assert json.loads(body) == {"ready": False, "error": "RuntimeError: the store vanished"}
    assert endpoint.get("/healthz")[0] == 200  # alive all the same


def test_metrics_serves_the_counters_in_prometheus_text(endpoint: Endpoint) -> None:
    metrics = endpoint.metrics
    feed(metrics, "file_applied", partner="acme", kind="stock", rows_applied=12, rows_refused=1, duration_ms=30)
    feed(metrics, "delivery_attempt", partner="acme", kind="ats", outcome="delivered")
    status, content_type, body = endpoint.get("/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    text = body.decode()
    assert 'gateway_items_total{kind="stock",outcome="applied",partner="acme"} 1.0' in text
    assert 'gateway_rows_applied_total{kind="stock",partner="acme"} 12.0' in text
    assert 'gateway_rows_refused_total{kind="stock",partner="acme"} 1.0' in text
    assert 'gateway_delivery_attempts_total{kind="ats",outcome="delivered",partner="acme"} 1.0' in text
    assert 'gateway_ingest_duration_seconds_count{kind="stock",partner="acme"} 1.0' in text
    feed(metrics, "file_applied", partner="acme", kind="stock", rows_applied=1)
    again = endpoint.get("/metrics")[2].decode()
    assert 'gateway_items_total{kind="stock",outcome="applied",partner="acme"} 2.0' in again


@pytest.mark.parametrize("path", ["/", "/health", "/metrics/extra", "/readyz/x", "/favicon.ico"])
def test_other_paths_are_404(endpoint: Endpoint, path: str) -> None:
    status, content_type, body = endpoint.get(path)
    assert (status, content_type) == (404, "application/json")
    assert json.loads(body) == {"error": "not found"}
