"""The circuit breaker of a partner (gateway.service.publish.breaker): pure bookkeeping on instants it is given."""

from __future__ import annotations

import ast
from pathlib import Path

from gateway.domain import instant
from gateway.service.publish import breaker as breaker_module
from gateway.service.publish.breaker import Breaker

SECOND = 1_000_000
T0 = instant.parse("2026-03-01T08:00:00Z")


def test_a_closed_breaker_allows_every_batch() -> None:
    """Until it has failed, the partner is sent to."""
    assert Breaker(3, 60.0).allows(T0)


def test_the_breaker_opens_at_the_threshold_of_failures_in_a_row() -> None:
    """Failures below the threshold leave it closed; the one that reaches it opens it for `pause` seconds."""
    breaker = Breaker(3, 60.0)
    assert not breaker.failure(T0)
    assert not breaker.failure(T0 + SECOND)
    assert breaker.failure(T0 + 2 * SECOND)
    assert breaker.open_until == T0 + 62 * SECOND
    assert not breaker.allows(T0 + 62 * SECOND - 1)
    assert breaker.allows(T0 + 62 * SECOND)  # one batch may probe the partner


def test_a_success_closes_the_breaker_and_says_whether_it_was_open() -> None:
    """A batch that goes through resets the count; True only when that closed an open breaker."""
    breaker = Breaker(1, 10.0)
    assert not breaker.success()
    breaker.failure(T0)
    assert breaker.success()
    assert (breaker.failures, breaker.open_until) == (0, None)


def test_a_failed_probe_opens_it_again() -> None:
    """Past the threshold, each failure re-opens the breaker from its own moment."""
    breaker = Breaker(2, 30.0, failures=2, open_until=T0)
    assert breaker.failure(T0 + 5 * SECOND)
    assert breaker.open_until == T0 + 35 * SECOND


def test_a_trip_opens_at_once() -> None:
    """Refused credentials: open now, counted as the threshold reached."""
    breaker = Breaker(5, 60.0)
    breaker.trip(T0)
    assert (breaker.failures, breaker.open_until) == (5, T0 + 60 * SECOND)


def test_adopt_takes_the_stores_copy_only_when_it_is_open_later() -> None:
    """Another process's breaker is respected; an earlier or absent copy changes nothing."""
    breaker = Breaker(3, 60.0, failures=1)
    breaker.adopt(None)
    assert (breaker.failures, breaker.open_until) == (1, None)
    breaker.adopt(T0)
    assert (breaker.failures, breaker.open_until) == (3, T0)
    breaker.adopt(T0 - 1)
    assert breaker.open_until == T0


def test_the_breaker_module_imports_only_the_standard_library_and_the_domain() -> None:
    """No clock, no I/O: the breaker is told the time."""
    tree = ast.parse(Path(breaker_module.__file__).read_text(encoding="utf-8"))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
    outside = [name for name in imported if not name.startswith(("gateway.domain", "__future__", "dataclasses"))]
    assert outside == []
