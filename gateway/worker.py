"""The worker daemon (`gateway run`): watches, polls and delivers for every partner until told to stop.

Per partner: a watchdog observer per folder source, an APScheduler interval job per SFTP source and per API
feed (`max_instances=1`, `coalesce=True`, a misfire grace, jitter), and a delivery loop woken when an item
commits outbox rows, with an interval as a safety net. A pass over a source that stopped at
`max_files_per_poll` is followed by the next at once. On SQLite every write goes through one writer and a
second worker on the same store refuses to start.

SIGTERM or SIGINT: stop taking new items, finish the items in hand (or let them roll back when the grace period
runs out: an uncommitted transaction leaves nothing), stop everything, exit 0. A second signal exits at once.
SIGHUP: re-read the configuration and apply it, or keep the running one and log why the new one was refused.
"""

from __future__ import annotations

import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client.core import Metric

from gateway import access, bootstrap, logs, platform_api, settings
from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.health import HealthServer
from gateway.metrics import Metrics, gauge
from gateway.service import pickup
from gateway.service.publish import routes
from gateway.settings import FolderSource, Settings, SftpSource
from gateway.store.port import StoreError
from gateway.store.sql import SqlStore
from gateway.transport.folder import FolderWatcher

log = logs.get(__name__)

_SECOND = 1_000_000
EXIT_AT_ONCE = 130


class WorkerError(Exception):
    """The worker cannot start as configured."""


@dataclass
class SourceState:
    """What the worker knows of one source or feed: when it last worked, and its last error."""

    partner: str
    name: str
    type: str  # folder | sftp | api
    interval: float  # seconds between polls (folder: between rescans)
    last_ok: Instant | None = None
    last_error: str | None = None
    last_error_at: Instant | None = None
    started: Instant = 0

    def as_dict(self, now: Instant, staleness_factor: float) -> dict[str, Any]:
        """JSON-ready, with the seconds since the last success and whether that is too long."""
        since = None if self.last_ok is None else (now - self.last_ok) / _SECOND
        return {
            "partner": self.partner,
            "source": self.name,
            "type": self.type,
            "last_ok": instant.to_iso(self.last_ok),
            "seconds_since_ok": since,
            "last_error": self.last_error,
            "last_error_at": instant.to_iso(self.last_error_at),
            "stale": self.stale(now, staleness_factor),
        }

    def stale(self, now: Instant, factor: float) -> bool:
        """No success within `factor` intervals (counted from the start until the first success)."""
        allowed = max(self.interval * factor, 10.0) * _SECOND
        reference = self.last_ok if self.last_ok is not None else self.started
        return now - reference > allowed or (self.last_ok is None and self.last_error is not None)


@dataclass
class _Running:
    """What one configuration runs: the app, its scheduler, watchers and delivery loops."""

    app: bootstrap.App
    scheduler: BackgroundScheduler
    watchers: list[FolderWatcher] = field(default_factory=list)
    wakes: dict[str, threading.Event] = field(default_factory=dict)
    loops: list[threading.Thread] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    api: Any = None  # the platform API's uvicorn server, when [api] enabled
    api_thread: threading.Thread | None = None


class Worker:
    """`gateway run`."""

    def __init__(self, config_path: Path, clock: Callable[[], Instant] = bootstrap.system_clock) -> None:
        self.config_path = config_path
        self.clock = clock
        self.settings = settings.load(config_path)
        self.tokens = _tokens(self.settings)  # ConfigError names a missing token at once
        self.api_port: int | None = None
        self.metrics = Metrics()
        self.sources: dict[tuple[str, str], SourceState] = {}
        self.store: SqlStore | None = None
        self.running: _Running | None = None
        self.health: HealthServer | None = None
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._signals = 0
        self._lock = threading.Lock()
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
            store.claim_worker()  # before anything waits on the database: a second worker is refused at once
            store.migrate()
            if store.dialect == "sqlite":
                # the one worker of this store: a claim left by a worker that died is nobody's now, so its batch
                # goes again (under its key) at once rather than after its lease
                with store.write() as tx:
                    released = tx.release_claims()
                if released:
                    log.info("claims_released", messages=released)
        except StoreError:
            store.close()
            raise
        self.store = store
        self.running = self._launch(self.settings)
        config = self.settings.worker
        if config.health_port is not None:
            self.metrics.add_collector(self._collect)
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
        if self.running is not None:
            finished = self._halt(self.running, grace)
            self.running = None
        if self.health is not None:
            self.health.stop()
        if self.store is not None:
            self.store.close()
        self.finished = finished
        if finished:
            log.info("worker_stopped")
        else:
            log.warning("worker_stopped", rolled_back="an item in hand did not finish within the grace period")
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
        self._halt(self.running, None)  # the items in hand finish: nothing is lost
        self.settings, self.tokens = fresh, tokens
        self.running = self._launch(fresh)
        log.info("config_reloaded", partners=sorted(fresh.partners))

    # what a configuration runs

    def _launch(self, config: Settings) -> _Running:
        assert self.store is not None
        bootstrap.sync_partners(self.store, config, self.clock)
        running = _Running(app=bootstrap.wire(config, self.store, self.clock), scheduler=self._scheduler(config))
        running.app.publisher.sleep = _until(running.stop)  # a retry's wait ends when the worker stops
        running.app.pickup.wait = _until(running.stop)  # and so does a stability check's
        with self._lock:
            self.sources = {}
        now = self.clock()
        for partner, partner_settings in config.partners.items():
            for source in partner_settings.sources:
                if source.workers is None or config.worker.name in source.workers:
                    self._watch_or_schedule(running, config, partner, source, now)
                else:  # its folder is not mounted here, or its server is not reached from here
                    log.info("source_not_here", partner=partner, source=source.name, worker=config.worker.name)
            api = partner_settings.api
            if api is not None:
                for feed in api.feeds:
                    state = self._state(partner, f"api:{feed}", "api", api.poll_seconds, now)
                    _every(running, config, api.poll_seconds, f"feed:{partner}:{feed}", self._poll_feed, feed, state)
            if routes(partner_settings):
                wake = running.wakes[partner] = threading.Event()
                loop = threading.Thread(
                    target=self._deliver_loop, args=(running, partner, wake), name=f"deliver-{partner}", daemon=True
                )
                running.loops.append(loop)
        running.scheduler.start()
        for watcher in running.watchers:
            watcher.start()
        for loop in running.loops:
            loop.start()
        if config.api.enabled:
            self._serve_api(running, config)
        return running

    def _serve_api(self, running: _Running, config: Settings) -> None:
        """The platform API on its own thread, over this configuration's use cases."""
        server = platform_api.server(running.app, self.tokens, config.api.host, config.api.port)
        thread = threading.Thread(target=server.run, name="platform-api", daemon=True)
        running.api, running.api_thread = server, thread
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            raise WorkerError(f"the platform API could not listen on {config.api.host}:{config.api.port}")
        port = server.servers[0].sockets[0].getsockname()[1]
        log.info("api_listening", host=config.api.host, port=port)
        self.api_port = port

    def _scheduler(self, config: Settings) -> BackgroundScheduler:
        return BackgroundScheduler(
            timezone="UTC",
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": max(1, math.ceil(config.worker.misfire_grace)),  # whole seconds
            },
        )

    def _watch_or_schedule(
        self, running: _Running, config: Settings, partner: str, source: FolderSource | SftpSource, now: Instant
    ) -> None:
        if isinstance(source, FolderSource):
            state = self._state(partner, source.name, "folder", source.rescan_seconds, now)
            running.watchers.append(FolderWatcher(source, lambda: self._poll_source(running, partner, source, state)))
            return
        state = self._state(partner, source.name, "sftp", source.poll_seconds, now)
        _every(
            running, config, source.poll_seconds, f"source:{partner}:{source.name}", self._poll_source, source, state
        )

    def _state(self, partner: str, name: str, kind: str, interval: float, now: Instant) -> SourceState:
        state = SourceState(partner, name, kind, interval, started=now)
        with self._lock:
            self.sources[(partner, name)] = state
        return state

    def _halt(self, running: _Running, grace: float | None) -> bool:
        """Stop taking new items; True when the items in hand finished (within `grace` seconds if given)."""
        running.stop.set()
        running.app.pickup.stopping.set()
        running.app.publisher.stopping.set()
        for wake in running.wakes.values():
            wake.set()
        deadline = None if grace is None else time.monotonic() + grace

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        if running.api is not None:
            running.api.should_exit = True  # answers in flight finish; no new connection is taken
        stoppers = [threading.Thread(target=w.stop, daemon=True) for w in running.watchers]
        if running.api_thread is not None:
            stoppers.append(running.api_thread)
        stoppers.append(threading.Thread(target=running.scheduler.shutdown, kwargs={"wait": True}, daemon=True))
        for thread in stoppers:
            if thread is not running.api_thread:
                thread.start()
        for thread in [*stoppers, *running.loops]:
            thread.join(timeout=left())
        finished = not any(thread.is_alive() for thread in [*stoppers, *running.loops])
        running.app.apis.close()
        running.app.feed_apis.close()
        return finished

    # the work

    def _poll_source(
        self, running: _Running, partner: str, source: FolderSource | SftpSource, state: SourceState
    ) -> None:
        # a pass that stopped at max_files_per_poll is followed by the next at once, not at the next interval
        while not running.stop.is_set():
            try:
                picked = running.app.pickup.poll(partner, source)
            except Exception as exc:
                self._failed(state, exc, "source_poll_failed")
                return
            self._succeeded(state)
            if any(item.outcome == "applied" for item in picked):
                self._wake(running, partner)
            if not pickup.stopped_at_limit(picked, source):
                return

    def _poll_feed(self, running: _Running, partner: str, feed: str, state: SourceState) -> None:
        if running.stop.is_set():
            return
        try:
            report = running.app.feeds.poll(partner, feed)
        except Exception as exc:
            self._failed(state, exc, "feed_poll_failed")
            return
        if report.error is not None:
            self._failed(state, RuntimeError(report.error), None)
        else:
            self._succeeded(state)
        if any(page.result.outcome == "applied" for page in report.pages):
            self._wake(running, partner)

    def _succeeded(self, state: SourceState) -> None:
        with self._lock:
            state.last_ok = self.clock()

    def _failed(self, state: SourceState, exc: BaseException, event: str | None) -> None:
        with self._lock:
            state.last_error = str(exc)
            state.last_error_at = self.clock()
        if event is not None:
            log.warning(event, partner=state.partner, source=state.name, error=str(exc))

    def _wake(self, running: _Running, partner: str) -> None:
        wake = running.wakes.get(partner)
        if wake is not None:
            wake.set()

    def _deliver_loop(self, running: _Running, partner: str, wake: threading.Event) -> None:
        interval = self.settings.worker.delivery_interval
        while not running.stop.is_set():
            wake.clear()
            try:
                running.app.publisher.deliver(partner)
            except Exception:
                log.exception("delivery_pass_failed", partner=partner)
            if running.stop.is_set():
                return
            wake.wait(interval + random.uniform(0, min(1.0, interval / 10)))  # noqa: S311 - jitter

    # health

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """The store answers and no source is stale."""
        problems: list[str] = []
        try:
            assert self.store is not None
            with self.store.read() as tx:
                tx.holds_stock(0)
        except Exception as exc:
            problems.append(f"store: {type(exc).__name__}: {exc}")
        states = self.source_states()
        problems.extend(
            f"source {s['partner']}/{s['source']}: "
            + (
                "no successful poll yet"
                if s["seconds_since_ok"] is None
                else f"no successful poll for {s['seconds_since_ok']:.0f} s"
            )
            + (f"; last error: {s['last_error']}" if s["last_error"] else "")
            for s in states
            if s["stale"]
        )
        return not problems, {"problems": problems, "sources": states}

    def source_states(self) -> list[dict[str, Any]]:
        """Every source's state, JSON-ready."""
        now = self.clock()
        with self._lock:
            return [state.as_dict(now, self.settings.worker.staleness_factor) for state in self.sources.values()]

    def _collect(self) -> Iterator[Metric]:
        now = self.clock()
        since = gauge(
            "gateway_source_seconds_since_success",
            "Seconds since the source's last successful poll",
            ["partner", "source"],
        )
        with self._lock:
            for state in self.sources.values():
                reference = state.last_ok if state.last_ok is not None else state.started
                since.add_metric([state.partner, state.name], (now - reference) / _SECOND)
        yield since
        depth = gauge("gateway_outbox_depth", "Messages waiting for delivery", ["partner", "kind"])
        oldest = gauge("gateway_outbox_oldest_seconds", "Age of the oldest undelivered message", ["partner"])
        dead = gauge("gateway_outbox_dead", "Messages in dead letter", ["partner", "kind"])
        if self.store is not None:
            with self.store.read() as tx:
                for partner in self.settings.partners:
                    counts = tx.outbox_counts(tx.partner_id(partner))
                    pending = [c for c in counts if c.state == "pending"]
                    for c in pending:
                        depth.add_metric([partner, c.kind], c.count)
                    for c in counts:
                        if c.state == "dead":
                            dead.add_metric([partner, c.kind], c.count)
                    first = min((c.oldest for c in pending), default=None)
                    oldest.add_metric([partner], 0.0 if first is None else (now - first) / _SECOND)
        yield depth
        yield oldest
        yield dead


def _tokens(config: Settings) -> access.Tokens:
    """The platform API's tokens, read only when it is enabled."""
    return access.Tokens.from_settings(config) if config.api.enabled else access.Tokens([])


def _every(
    running: _Running, config: Settings, seconds: float, job_id: str, job: Callable[..., None], *args: Any
) -> None:
    """An interval job (one instance at a time, coalesced, jittered); `job(running, partner, *args)`."""
    partner = job_id.split(":")[1]
    running.scheduler.add_job(
        job,
        "interval",
        args=(running, partner, *args),
        seconds=seconds,
        jitter=min(config.worker.jitter, seconds / 4),
        id=job_id,
        next_run_time=_soon(config.worker.jitter),
    )


def _until(stop: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return sleep


def _soon(jitter: float) -> Any:
    """The first run of a poll: now, plus some jitter so partners do not start in lock-step."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415 - only for the scheduler's first run

    return datetime.now(UTC) + timedelta(seconds=random.uniform(0, min(jitter, 2.0)))  # noqa: S311 - jitter
