"""The platform API server's throttled log: one line per kind of refusal a minute, however often it happens."""

from __future__ import annotations

import structlog

from gateway.logs import configure
from gateway.platform_api.http_server import Throttled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_throttled_event_is_logged_once_per_interval_with_the_count_since_the_last_line() -> None:
    """The first hit is logged at once; the hits within the next minute are one line at the first hit after it."""
    configure("json", None, "debug")
    clock = Clock()
    throttled = Throttled("api_accept_failed", interval=60.0, clock=clock)
    with structlog.testing.capture_logs() as events:
        throttled.hit(errno="EMFILE")
        for _ in range(2047):  # asyncio's accept loop: one failure per waiting connection, in one go
            throttled.hit(errno="EMFILE")
        clock.now += 59.9
        throttled.hit(errno="EMFILE")
        clock.now += 0.1
        throttled.hit(errno="EMFILE")
    assert [(e["event"], e["count"], e["errno"], e["log_level"]) for e in events] == [
        ("api_accept_failed", 1, "EMFILE", "warning"),
        ("api_accept_failed", 2049, "EMFILE", "warning"),
    ]
