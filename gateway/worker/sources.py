"""What the worker knows of each source and feed: when it last worked, its last error, and whether that makes it
stale. The jobs write these states; the health endpoint and the metrics read them (under one lock)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from gateway import logs
from gateway.domain import instant
from gateway.domain.instant import Instant

log = logs.get(__name__)

_SECOND = 1_000_000
_LEAST_ALLOWANCE = 10.0  # seconds: a source polled very often is not stale after a single slow poll


class Poll(NamedTuple):
    """What the metrics show of one source or feed: seconds since its last success, its interval and allowance."""

    partner: str
    source: str
    seconds_since_success: float
    interval: float
    stale_after: float  # seconds without a success after which it is stale (as /readyz says)


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
        allowed = self.allowance(factor) * _SECOND
        return now - self._reference() > allowed or (self.last_ok is None and self.last_error is not None)

    def allowance(self, factor: float) -> float:
        """Seconds without a success after which the source is stale: `factor` intervals, at least ten seconds."""
        return max(self.interval * factor, _LEAST_ALLOWANCE)

    def seconds_since_success(self, now: Instant) -> float:
        """Seconds since the last success (since the start until there is one)."""
        return (now - self._reference()) / _SECOND

    def _reference(self) -> Instant:
        return self.last_ok if self.last_ok is not None else self.started


class Sources:
    """The states of the sources and feeds the running configuration polls, keyed by (partner, name)."""

    def __init__(self, clock: Callable[[], Instant]) -> None:
        self.clock = clock
        self.states: dict[tuple[str, str], SourceState] = {}
        self.lock = threading.Lock()

    def clear(self) -> None:
        """Forget every state (a configuration is launched: it tracks its own)."""
        with self.lock:
            self.states = {}

    def track(self, partner: str, name: str, kind: str, interval: float, now: Instant) -> SourceState:
        """A new state for a source or feed, started now."""
        state = SourceState(partner, name, kind, interval, started=now)
        with self.lock:
            self.states[(partner, name)] = state
        return state

    def succeeded(self, state: SourceState) -> None:
        """The source was polled without an error."""
        with self.lock:
            state.last_ok = self.clock()

    def failed(self, state: SourceState, exc: BaseException, event: str | None) -> None:
        """The poll failed: kept as the last error, and logged as `event` when given."""
        with self.lock:
            state.last_error = str(exc)
            state.last_error_at = self.clock()
        if event is not None:
            log.warning(event, partner=state.partner, source=state.name, error=str(exc))

    def as_dicts(self, now: Instant, staleness_factor: float) -> list[dict[str, Any]]:
        """Every state, JSON-ready."""
        with self.lock:
            return [state.as_dict(now, staleness_factor) for state in self.states.values()]

    def polls(self, now: Instant, staleness_factor: float) -> list[Poll]:
        """Every state as the metrics show it: seconds since its last success, its interval and allowance."""
        with self.lock:
            return [
                Poll(s.partner, s.name, s.seconds_since_success(now), s.interval, s.allowance(staleness_factor))
                for s in self.states.values()
            ]
