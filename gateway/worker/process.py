"""The worker process: start (the store claimed and migrated, the endpoint listening), serve until a signal,
stop within the grace period, and reload the configuration on SIGHUP."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from prometheus_client.core import Metric

from gateway import access, bootstrap, logs, settings
from gateway.domain.instant import Instant
from gateway.service import publish
from gateway.settings import PartnerSettings, Settings
from gateway.store.port import StoreError
from gateway.store.sql import SqlStore
from gateway.worker import health, metrics
from gateway.worker.health import HealthServer
from gateway.worker.jobs import Running
from gateway.worker.metrics import Metrics
from gateway.worker.sources import Sources

log = logs.get(__name__)

EXIT_AT_ONCE = 130


class WorkerError(Exception):
    """The worker cannot start as configured."""


class Worker:
    """`gateway run`."""

    def __init__(self, config_path: Path, clock: Callable[[], Instant] = bootstrap.system_clock) -> None:
        self.config_path = config_path
        self.clock = clock
        self.settings = settings.load(config_path)
        self.tokens = _tokens(self.settings)  # ConfigError names a missing token at once
        self.api_port: int | None = None
        self.metrics = Metrics()
        self.sources = Sources(clock)
        self.store: SqlStore | None = None
        self.running: Running | None = None
        self.health: HealthServer | None = None
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._signals = 0
        self.finished = True  # False when a stop ran out of grace with an item still in hand

    # the process

    def run(self) -> int:
        """Start, serve until a signal, stop; the exit code."""
        self.install_signals()
        self.start()
        while not self._stop.is_set():
            self._stop.wait(1.0)
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
        return self.stop()

    def install_signals(self) -> None:
        """SIGTERM and SIGINT stop (twice: at once), SIGHUP reloads."""
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)

    def _on_stop_signal(self, number: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("worker_exit_now", signal=signal.Signals(number).name)
            os._exit(EXIT_AT_ONCE)  # an uncommitted transaction leaves nothing behind
        grace = self.settings.worker.shutdown_grace
        log.info("worker_stopping", signal=signal.Signals(number).name, grace_seconds=grace)
        self._stop.set()

    def _on_reload_signal(self, _number: int, _frame: FrameType | None) -> None:
        self._reload.set()  # the main loop reloads at its next tick

    def start(self) -> None:
        """Open the store (refusing a second worker on SQLite), start the endpoint and every partner's work."""
        store = bootstrap.open_store(self.settings.store, migrate=False)
        try:
            # before anything waits on the database: a second worker is refused at once
            alone = store.claim_worker()
            store.migrate()
            if alone:
                # the one worker of this store: a claim left by a worker that died is nobody's now, so its batch
                # goes again (under its key) at once rather than after its lease
                released = publish.release_claims(store)
                if released:
                    log.info("claims_released", messages=released)
        except StoreError:
            store.close()
            raise
        self.store = store
        self.running = self._launch(self.settings)
        config = self.settings.worker
        if config.health_port is not None:
            self.metrics.add_collector(self.collect_gauges)
            try:
                self.health = HealthServer(config.health_host, config.health_port, self.ready, self.metrics.registry)
            except OSError as exc:
                self.stop()
                raise WorkerError(
                    f"cannot serve health and metrics on {config.health_host}:{config.health_port}: {exc.strerror}"
                    " (another worker, or set [worker] health_port)"
                ) from exc
            self.health.start()
        log.info(
            "worker_started",
            config=str(self.config_path),
            partners=sorted(self.settings.partners),
            pid=os.getpid(),
            health_port=self.health.port if self.health else None,
            api_port=self.api_port,
        )

    def stop(self) -> int:
        """Stop taking new items, let the items in hand finish within the grace period, release everything."""
        grace = self.settings.worker.shutdown_grace
        finished = True
        held = 0
        if self.running is not None:
            finished = self.running.halt(grace)
            self.running = None
            if not finished and self.store is not None:
                # at once, before anything slower: an item still in hand must not commit while the process leaves
                # (it would be applied while the log says rolled back); say what happened to it exactly
                held = self.store.hold_commits()
        if self.health is not None:
            self.health.stop()
        if self.store is not None:
            self.store.close()
        self.finished = finished
        if finished:
            log.info("worker_stopped")
        elif held:
            log.warning("worker_stopped", rolled_back="an item in hand did not finish within the grace period")
        else:  # out of the grace period, but nothing was being written: what was in hand committed or wrote nothing
            log.warning("worker_stopped", unfinished="work in hand did not finish within the grace period")
        return 0

    def reload(self) -> None:
        """Re-read the configuration: apply it, or keep the running one and say why."""
        try:
            fresh = settings.load(self.config_path)
        except settings.ConfigError as exc:
            log.error("config_reload_refused", problems=exc.problems)
            return
        if fresh.store != self.settings.store:
            log.error("config_reload_refused", problems=["store: the store cannot change while running; restart"])
            return
        try:
            tokens = _tokens(fresh)
        except settings.ConfigError as exc:
            log.error("config_reload_refused", problems=exc.problems)
            return
        assert self.running is not None
        log.info("config_reloading", partners=sorted(fresh.partners))
        self.running.halt(None)  # the items in hand finish: nothing is lost
        self.settings, self.tokens = fresh, tokens
        self.running = self._launch(fresh)
        log.info("config_reloaded", partners=sorted(fresh.partners))

    def _launch(self, config: Settings) -> Running:
        """Register the configuration's partners, wire its use cases and start what it runs."""
        assert self.store is not None
        bootstrap.sync_partners(self.store, config, self.clock)
        self.metrics.expect({name: _kinds_taken(partner) for name, partner in config.partners.items()})
        running = Running(bootstrap.wire(config, self.store, self.clock), config, self.sources)
        self.sources.clear()
        running.start(self.clock())
        if config.api.enabled:
            port = running.serve_api(self.tokens)
            if port is None:
                raise WorkerError(f"the platform API could not listen on {config.api.host}:{config.api.port}")
            self.api_port = port
        return running

    # health

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """The store answers and no source is stale."""
        return health.readiness(self.store, self.source_states)

    def source_states(self) -> list[dict[str, Any]]:
        """Every source's state, JSON-ready."""
        return self.sources.as_dicts(self.clock(), self.settings.worker.staleness_factor)

    def collect_gauges(self) -> Iterator[Metric]:
        """The gauges computed at each scrape: the sources' seconds since success, the partners' outbox."""
        now, config = self.clock(), self.settings
        polls = self.sources.polls(now, config.worker.staleness_factor)
        watched = {
            name: metrics.Watched(partner.delivery.alert_age_minutes * 60, frozenset(publish.routes(partner)))
            for name, partner in config.partners.items()
        }
        yield from metrics.scrape_gauges(now, polls, self.store, watched)


def _kinds_taken(partner: PartnerSettings) -> set[str]:
    """The kinds of item the partner's sources and feeds take (a bundle source's: "bundle")."""
    feeds = partner.api.feeds if partner.api is not None else []
    return {str(source.kind) for source in partner.sources} | {str(feed) for feed in feeds}


def _tokens(config: Settings) -> access.Tokens:
    """The platform API's tokens, read only when it is enabled."""
    return access.Tokens.from_settings(config) if config.api.enabled else access.Tokens([])
