"""A partner's circuit breaker: pure bookkeeping, told the time by its caller (no clock read, no I/O).

It stops a delivery pass from hammering a partner that keeps failing, and lets one batch probe it after a pause.
The delivery loop keeps a copy of `open_until` in the store so that another process respects it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.instant import Instant

_SECOND = 1_000_000


@dataclass
class Breaker:
    """A partner's circuit breaker: open after `threshold` failed batches in a row, for `pause` seconds."""

    threshold: int
    pause: float
    failures: int = 0
    open_until: Instant | None = None

    def allows(self, now: Instant) -> bool:
        """Closed, or open long enough that one batch may probe the partner."""
        return self.open_until is None or now >= self.open_until

    def success(self) -> bool:
        """A batch went through; True when that closed an open breaker."""
        was_open = self.open_until is not None
        self.failures, self.open_until = 0, None
        return was_open

    def failure(self, now: Instant) -> bool:
        """A batch failed; True when that opened (or re-opened) the breaker."""
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = now + int(self.pause * _SECOND)
            return True
        return False

    def trip(self, now: Instant) -> None:
        """Open at once (the partner refused our credentials)."""
        self.failures = max(self.failures, self.threshold)
        self.open_until = now + int(self.pause * _SECOND)

    def adopt(self, stored: Instant | None) -> None:
        """Take the store's copy when it is open later than this one (another process opened it)."""
        if stored is not None and (self.open_until is None or stored > self.open_until):
            self.open_until, self.failures = stored, max(self.failures, self.threshold)
