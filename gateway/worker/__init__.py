"""The worker daemon (`gateway run`): watches, polls and delivers for every partner until told to stop.

Per partner: a watchdog observer per folder source, an APScheduler interval job per SFTP source and per API
feed (`max_instances=1`, `coalesce=True`, a misfire grace, jitter), and a delivery loop woken when an item
commits outbox rows, with an interval as a safety net. A pass over a source that stopped at
`max_files_per_poll` is followed by the next at once. On SQLite every write goes through one writer and a
second worker on the same store refuses to start.

SIGTERM or SIGINT: stop taking new items, finish the items in hand (or let them roll back when the grace period
runs out: an uncommitted transaction leaves nothing), stop everything, exit 0. A second signal exits at once.
SIGHUP: re-read the configuration and apply it, or keep the running one and log why the new one was refused.

The modules: `process` (the Worker: start, stop, signals, reload), `jobs` (what one configuration runs and how
it is stopped), `sources` (what the worker knows of each source), `health` (the endpoint and readiness),
`metrics` (the registry fed by log events, and the gauges computed at each scrape).
"""

from __future__ import annotations

from gateway.worker.process import EXIT_AT_ONCE, Worker, WorkerError
from gateway.worker.sources import SourceState

__all__ = ["EXIT_AT_ONCE", "SourceState", "Worker", "WorkerError"]
