"""Prometheus metrics of the worker, fed by its own log events and read from the store when scraped.

Counters and histograms follow the stable log events (a processor sees every event before it is rendered), so
metrics and logs never disagree; gauges that describe the store (outbox depth, oldest undelivered message, dead
letters, circuit breakers, oversold SKUs) and the sources (seconds since the last successful poll) are computed at
each scrape.

Beside a measured gauge, the limit it is held to in configuration (a source's allowance, the oldest message's
age a partner tolerates) is a gauge too: the alerting rules (deploy/prometheus/alerts.yml) compare one with the
other, so that a threshold is set in the gateway's configuration, not by editing the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.domain.instant import Instant
from gateway.domain.messages import MessageKind
from gateway.domain.outcomes import Outcome
from gateway.service import outbox_view, reads
from gateway.store.port import Store
from gateway.worker.sources import Poll

_SECOND = 1_000_000

_ITEM_EVENTS = {
    "file_applied": Outcome.APPLIED,
    "file_rejected": Outcome.REJECTED,
    "file_duplicate": Outcome.DUPLICATE,
    "file_quarantined": Outcome.QUARANTINED,
    "page_applied": Outcome.APPLIED,
    "page_rejected": Outcome.REJECTED,
    "page_duplicate": Outcome.DUPLICATE,
    "bundle_applied": Outcome.APPLIED,  # its rows are its members' (kind "bundle")
    "bundle_rejected": Outcome.REJECTED,
    "bundle_duplicate": Outcome.DUPLICATE,
}

# the outcomes an alert watches grow (deploy/prometheus/alerts.yml, GatewayItemsRejected)
_WATCHED_OUTCOMES = (Outcome.REJECTED, Outcome.QUARANTINED)


class Metrics:
    """The worker's registry and the structlog processor that feeds it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.items = self._counter(
            "gateway_items",
            "Inbound items (files and pages) by outcome: applied, rejected, duplicate, quarantined",
            "outcome",
        )
        self.rows = self._counter("gateway_rows_applied", "Rows applied from inbound items")
        self.rows_refused = self._counter("gateway_rows_refused", "Rows refused by the rules")
        self.duration = Histogram(
            "gateway_ingest_duration_seconds",
            "Time to apply one inbound item",
            ["partner", "kind"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.deliveries = self._counter(
            "gateway_delivery_attempts", "Delivery attempts by outcome (delivered, failed)", "outcome"
        )
        self.retries = self._counter("gateway_delivery_retries", "Delivery retries scheduled")
        self.dead = self._counter("gateway_delivery_dead", "Messages sent to dead letter")
        self.purged = Counter(
            "gateway_purged",
            "What retention removed: outbox, ledger, dedupe, files, pages, items",
            ["what"],
            registry=self.registry,
        )

    def expect(self, kinds: Mapping[str, Iterable[str]]) -> None:
        """Show the rejected and quarantined item counters of each partner's kinds (`kinds`: partner -> the kinds
        its sources and feeds take) at 0 before the first one: Prometheus' `increase()` only sees a counter go up
        from a value it scraped, so a series born at 1 would hide the first rejection from the alert."""
        for partner, taken in kinds.items():
            for kind in taken:
                for outcome in _WATCHED_OUTCOMES:
                    self.items.labels(partner, kind, outcome)

    def _counter(self, name: str, documentation: str, *more_labels: str) -> Counter:
        """A counter of the registry, by partner and kind (and `more_labels`)."""
        return Counter(name, documentation, ["partner", "kind", *more_labels], registry=self.registry)

    def observe(self, _logger: object, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """A structlog processor: count what the event says happened."""
        name = event.get("event")
        partner = str(event.get("partner", ""))
        kind = str(event.get("kind", ""))
        outcome = _ITEM_EVENTS.get(str(name))
        if outcome is not None:
            self.items.labels(partner, kind, outcome).inc()
            if outcome == Outcome.APPLIED:
                self.rows.labels(partner, kind).inc(_number(event.get("rows_applied")))
                self.rows_refused.labels(partner, kind).inc(_number(event.get("rows_refused")))
            if "duration_ms" in event:
                self.duration.labels(partner, kind).observe(_number(event.get("duration_ms")) / 1000)
        elif name == "delivery_attempt":
            self.deliveries.labels(partner, kind, str(event.get("outcome", ""))).inc()
        elif name == "delivery_retry":
            self.retries.labels(partner, kind).inc()
        elif name == "delivery_dead":
            self.dead.labels(partner, kind).inc(_number(event.get("messages", 1)))
        elif name == "retention_purged" and not event.get("dry_run"):
            self.purged.labels(str(event.get("what", ""))).inc(_number(event.get("count")))
        return event

    def add_collector(self, collect: Callable[[], Iterator[Metric]]) -> None:
        """Gauges computed at each scrape."""
        self.registry.register(_Collector(collect))


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class _Collector(Collector):
    def __init__(self, collect: Callable[[], Iterator[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Metric]:
        return self._collect()


def gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    """A gauge family to fill at scrape time."""
    return GaugeMetricFamily(name, documentation, labels=labels)


class Watched(NamedTuple):
    """What the outbox gauges of one partner watch: the age of the oldest waiting message it tolerates (seconds),
    and the kinds it has a route for (a kind with none is queued but never sent: no age of it is a delivery's)."""

    limit: float
    routed: frozenset[MessageKind]


def scrape_gauges(
    now: Instant, polls: Iterable[Poll], store: Store | None, watched: Mapping[str, Watched]
) -> Iterator[Metric]:
    """The gauges of one scrape: each source's seconds since its last success, its interval and allowance
    (`polls`); each partner's outbox (depth; the oldest message waiting on a route and the age it tolerates;
    dead letters), its circuit breaker (open while open_until is ahead, or while routed messages wait behind it)
    and its count of oversold SKUs (stock level below allocation), read from the store."""
    yield from _source_gauges(polls)
    partners = list(watched)
    waiting: dict[str, int] = {}
    depth = gauge("gateway_outbox_depth", "Messages waiting for delivery", ["partner", "kind"])
    oldest = gauge(
        "gateway_outbox_oldest_seconds",
        "Age of the oldest message waiting for delivery on a route (kinds without a route left out)",
        ["partner"],
    )
    dead = gauge("gateway_outbox_dead", "Messages in dead letter", ["partner", "kind"])
    if store is not None:
        for summary in outbox_view.summaries(store, partners):
            for c in summary.pending:
                depth.add_metric([summary.partner, c.kind], c.count)
            for c in summary.dead:
                dead.add_metric([summary.partner, c.kind], c.count)
            routed = [c for c in summary.pending if c.kind in watched[summary.partner].routed]
            waiting[summary.partner] = sum(c.count for c in routed)
            first = min((c.oldest for c in routed), default=None)
            oldest.add_metric([summary.partner], 0.0 if first is None else (now - first) / _SECOND)
    limit = gauge(
        "gateway_outbox_oldest_limit_seconds",
        "Age of the oldest undelivered message the partner tolerates (its delivery's alert_age_minutes)",
        ["partner"],
    )
    for partner, watch in watched.items():
        limit.add_metric([partner], watch.limit)
    yield depth
    yield oldest
    yield limit
    yield dead
    breaker = gauge(
        "gateway_delivery_breaker_open",
        "1 while the partner's circuit breaker is open: its pause ahead, or routed messages waiting behind it",
        ["partner"],
    )
    oversold = gauge("gateway_oversold_skus", "SKUs whose stock level is below their allocation", ["partner"])
    if store is not None:
        for partner, open_until in reads.breakers(store, partners).items():
            # open until a batch goes through again; but a partner with nothing left to send (all of it dead,
            # say) has no batch to send: past its pause it is not open for anything
            is_open = open_until is not None and (open_until > now or waiting.get(partner, 0) > 0)
            breaker.add_metric([partner], 1.0 if is_open else 0.0)
        for partner, count in reads.oversold_counts(store, partners).items():
            oversold.add_metric([partner], count)
    yield breaker
    yield oversold


def _source_gauges(polls: Iterable[Poll]) -> Iterator[Metric]:
    labels = ["partner", "source"]
    since = gauge("gateway_source_seconds_since_success", "Seconds since the source's last successful poll", labels)
    interval = gauge("gateway_source_poll_interval_seconds", "Seconds between the source's polls", labels)
    stale = gauge(
        "gateway_source_stale_after_seconds",
        "Seconds without a successful poll after which the source is stale (staleness_factor intervals, >= 10)",
        labels,
    )
    for poll in polls:
        since.add_metric([poll.partner, poll.source], poll.seconds_since_success)
        interval.add_metric([poll.partner, poll.source], poll.interval)
        stale.add_metric([poll.partner, poll.source], poll.stale_after)
    yield since
    yield interval
    yield stale
