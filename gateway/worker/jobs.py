"""What one configuration runs, and how it is supervised: the scheduler's interval jobs (SFTP sources, API
feeds, retention at start and daily), a watchdog observer per folder source, a
delivery loop per partner with routes, and the platform API when enabled; all stopped together, the items in hand
let finish."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from gateway import access, bootstrap, logs, platform_api
from gateway.domain.instant import Instant
from gateway.domain.outcomes import Outcome
from gateway.service import pickup, purge
from gateway.service.publish import routes
from gateway.settings import FolderSource, Settings, SftpSource
from gateway.transport.folder import FolderWatcher
from gateway.worker.sources import Sources, SourceState

log = logs.get(__name__)

# seconds the daily retention run may start late: workers sharing a store, started together, do not purge together
PURGE_JITTER = 3600.0


class Running:
    """What one configuration runs: the app, its scheduler, watchers and delivery loops."""

    def __init__(self, app: bootstrap.App, config: Settings, sources: Sources) -> None:
        self.app = app
        self.config = config
        self.sources = sources
        self.scheduler = _scheduler(config)
        self.watchers: list[FolderWatcher] = []
        self.wakes: dict[str, threading.Event] = {}
        self.loops: list[threading.Thread] = []
        self.stop = threading.Event()
        self.api: Any = None  # the platform API's uvicorn server, when [api] enabled
        self.api_thread: threading.Thread | None = None
        app.publisher.sleep = _until(self.stop)  # a retry's wait ends when the worker stops
        app.pickup.wait = _until(self.stop)  # and so does a stability check's

    def start(self, now: Instant) -> None:
        """Every partner's sources (those polled from this worker), feeds and delivery loop, started."""
        config = self.config
        for partner, partner_settings in config.partners.items():
            for source in partner_settings.sources:
                if source.workers is None or config.worker.name in source.workers:
                    self._watch_or_schedule(partner, source, now)
                else:  # its folder is not mounted here, or its server is not reached from here
                    log.info("source_not_here", partner=partner, source=source.name, worker=config.worker.name)
            api = partner_settings.api
            if api is not None:
                for feed in api.feeds:
                    state = self.sources.track(partner, f"api:{feed}", "api", api.poll_seconds, now)
                    self._every(api.poll_seconds, f"feed:{partner}:{feed}", self._poll_feed, feed, state)
            if routes(partner_settings):
                wake = self.wakes[partner] = threading.Event()
                loop = threading.Thread(
                    target=self._deliver_loop, args=(partner, wake), name=f"deliver-{partner}", daemon=True
                )
                self.loops.append(loop)
        self.scheduler.add_job(
            self._purge,
            "interval",
            days=1,
            jitter=PURGE_JITTER,
            id="retention",
            next_run_time=_soon(self.config.worker.jitter),
        )
        self.scheduler.start()
        for watcher in self.watchers:
            watcher.start()
        for loop in self.loops:
            loop.start()

    def serve_api(self, tokens: access.Tokens) -> int | None:
        """The platform API on its own thread, over this configuration's use cases; the port it listens on, or
        None when it could not listen."""
        config = self.config
        factor = config.worker.staleness_factor

        def states() -> list[dict[str, Any]]:  # for the console: what this worker knows of its sources
            return self.sources.as_dicts(self.app.clock(), factor)

        server = platform_api.server(self.app, tokens, config.api.host, config.api.port, states)
        thread = threading.Thread(target=server.run, name="platform-api", daemon=True)
        self.api, self.api_thread = server, thread
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            return None
        port: int = server.servers[0].sockets[0].getsockname()[1]
        log.info("api_listening", host=config.api.host, port=port)
        return port

    def halt(self, grace: float | None) -> bool:
        """Stop taking new items; True when the items in hand finished (within `grace` seconds if given)."""
        self.stop.set()
        self.app.pickup.stopping.set()
        self.app.publisher.stopping.set()
        for wake in self.wakes.values():
            wake.set()
        deadline = None if grace is None else time.monotonic() + grace

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        if self.api is not None:
            self.api.should_exit = True  # answers in flight finish; no new connection is taken
        stoppers = [threading.Thread(target=w.stop, daemon=True) for w in self.watchers]
        if self.api_thread is not None:
            stoppers.append(self.api_thread)
        stoppers.append(threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True))
        for thread in stoppers:
            if thread is not self.api_thread:
                thread.start()
        for thread in [*stoppers, *self.loops]:
            thread.join(timeout=left())
        finished = not any(thread.is_alive() for thread in [*stoppers, *self.loops])
        self.app.apis.close()
        self.app.feed_apis.close()
        return finished

    # the jobs

    def _watch_or_schedule(self, partner: str, source: FolderSource | SftpSource, now: Instant) -> None:
        if isinstance(source, FolderSource):
            state = self.sources.track(partner, source.name, "folder", source.rescan_seconds, now)
            self.watchers.append(FolderWatcher(source, lambda: self._poll_source(partner, source, state)))
            return
        state = self.sources.track(partner, source.name, "sftp", source.poll_seconds, now)
        self._every(source.poll_seconds, f"source:{partner}:{source.name}", self._poll_source, source, state)

    def _every(self, seconds: float, job_id: str, job: Callable[..., None], *args: Any) -> None:
        """An interval job (one instance at a time, coalesced, jittered); `job(partner, *args)`."""
        partner = job_id.split(":")[1]
        self.scheduler.add_job(
            job,
            "interval",
            args=(partner, *args),
            seconds=seconds,
            jitter=min(self.config.worker.jitter, seconds / 4),
            id=job_id,
            next_run_time=_soon(self.config.worker.jitter),
        )

    def _poll_source(self, partner: str, source: FolderSource | SftpSource, state: SourceState) -> None:
        # a pass that stopped at max_files_per_poll is followed by the next at once, not at the next interval
        while not self.stop.is_set():
            try:
                picked = self.app.pickup.poll(partner, source)
            except Exception as exc:
                self.sources.failed(state, exc, "source_poll_failed")
                return
            self.sources.succeeded(state)
            if any(item.outcome == Outcome.APPLIED for item in picked):
                self._wake(partner)
            if not pickup.stopped_at_limit(picked, source):
                return

    def _poll_feed(self, partner: str, feed: str, state: SourceState) -> None:
        if self.stop.is_set():
            return
        try:
            report = self.app.feeds.poll(partner, feed)
        except Exception as exc:
            self.sources.failed(state, exc, "feed_poll_failed")
            return
        if report.error is not None:
            self.sources.failed(state, RuntimeError(report.error), None)
        else:
            self.sources.succeeded(state)
        if any(page.result.outcome == Outcome.APPLIED for page in report.pages):
            self._wake(partner)

    def _purge(self) -> None:
        """What [retention] no longer keeps, removed in small batches (`retention_purged`); the worker stopping ends
        it between two batches."""
        try:
            purge.purge(self.app.store, self.config, self.app.clock(), stopping=self.stop.is_set)
        except Exception:  # the next run tries again; the worker goes on
            log.exception("retention_failed")

    def _wake(self, partner: str) -> None:
        wake = self.wakes.get(partner)
        if wake is not None:
            wake.set()

    def _deliver_loop(self, partner: str, wake: threading.Event) -> None:
        interval = self.config.worker.delivery_interval
        while not self.stop.is_set():
            wake.clear()
            try:
                self.app.publisher.deliver(partner)
            except Exception:
                log.exception("delivery_pass_failed", partner=partner)
            if self.stop.is_set():
                return
            wake.wait(interval + random.uniform(0, min(1.0, interval / 10)))  # noqa: S311 - jitter


def _scheduler(config: Settings) -> BackgroundScheduler:
    return BackgroundScheduler(
        timezone="UTC",
        job_defaults={
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": max(1, math.ceil(config.worker.misfire_grace)),  # whole seconds
        },
    )


def _until(stop: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return sleep


def _soon(jitter: float) -> datetime:
    """The first run of a poll: now, plus some jitter so partners do not start in lock-step."""
    return datetime.now(UTC) + timedelta(seconds=random.uniform(0, min(jitter, 2.0)))  # noqa: S311 - jitter
