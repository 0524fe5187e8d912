"""The outbox as `gateway outbox`, `gateway status` and the worker's metrics see it: counts summed by state, and
why each message is where it is."""

from __future__ import annotations

from gateway.service.outbox_view import OutboxSummary, why
from gateway.store.port import OutboxCount, OutboxRecord

SECOND = 1_000_000


BASE = OutboxRecord(
    id=1,
    partner="p",
    kind="ats",
    key="SKU-1",
    value=3,
    as_of=None,
    payload=None,
    ledger_id=None,
    created_at=0,
    state="pending",
    attempts=0,
)


def record(**fields: object) -> OutboxRecord:
    return BASE._replace(**fields)


def test_a_summary_counts_what_waits_and_what_is_dead_apart() -> None:
    """Depth and oldest come from pending messages only; dead letters are counted on their own."""
    summary = OutboxSummary(
        "p",
        (
            OutboxCount("ats", "pending", 3, oldest=50 * SECOND, next_attempt_at=None),
            OutboxCount("channel_ats", "pending", 2, oldest=20 * SECOND, next_attempt_at=None),
            OutboxCount("ats", "dead", 4, oldest=1 * SECOND, next_attempt_at=None),
            OutboxCount("ats", "delivered", 9, oldest=0, next_attempt_at=None),
        ),
    )
    assert summary.depth == 5
    assert summary.oldest == 20 * SECOND
    assert summary.dead_letters == 4
    assert [c.kind for c in summary.pending] == ["ats", "channel_ats"]
    assert [c.count for c in summary.dead] == [4]


def test_an_empty_outbox_has_no_oldest_message() -> None:
    """Nothing waits: depth 0 and no age to show."""
    summary = OutboxSummary("p", ())
    assert (summary.depth, summary.oldest, summary.dead_letters) == (0, None, 0)


def test_why_says_what_holds_each_message() -> None:
    """Dead, unrouted, being sent, waiting for a retry, or due: in that order of precedence."""
    now = 100 * SECOND
    routed = {"ats"}
    assert why(record(state="dead", attempts=5, last_error="HTTP 500"), routed, now) == (
        "dead after 5 attempt(s): HTTP 500"
    )
    assert why(record(kind="channel_ats"), routed, now).startswith("no route:")
    assert why(record(claimed_until=now + SECOND), routed, now).startswith("being sent (claimed until ")
    waiting = why(record(attempts=2, next_attempt_at=now + SECOND), routed, now)
    assert waiting.startswith("retry at ")
    assert waiting.endswith("after 2 attempt(s): no answer recorded")
    assert why(record(), routed, now) == "due now"
    assert why(record(attempts=1, next_attempt_at=now - SECOND), routed, now) == "due now, 1 attempt(s) so far"
