"""Delivery from the outbox to a partner's HTTP API, against the real fake partner on 127.0.0.1.

The app runs on a FakeClock; its `sleep` only records the wait asked and moves that clock, so backoff never
really waits. Real time is spent only where a real read timeout is the point (Slow), and is kept short.
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner

from gateway import bootstrap, cli, settings
from gateway.domain import instant
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.logs import configure
from gateway.service import queries
from gateway.service.publish import DeliveryReport, Publisher
from gateway.store.port import OutboxRecord
from gateway.store.sql import SqlStore
from tests.conftest import FakeClock, write_config
from tests.support.partner import FakePartner, Lost, Recorded, Reset, Slow, Status, running

pytestmark = pytest.mark.both_stores

TOKEN_ENV = "GATEWAY_TEST_DELIVERY_TOKEN"  # noqa: S105 - the name of a variable, not a secret
TOKEN = "delivery-s3cret"  # noqa: S105 - the fake partner's token, not a secret
SECOND = 1_000_000
PATHS = {
    "ats": "/v1/ats",
    "channel_ats": "/v1/channel-ats",
    "order_closed": "/v1/orders/closed",
    "order_export": "/v1/order-exports",
}


@dataclass
class Rig:
    """An app wired to a running fake partner, on a fake clock, with a sleep that records and moves the clock."""

    partner: FakePartner
    clock: FakeClock
    sleeps: list[float] = field(default_factory=list)
    # run (once each, in order) when the publisher sleeps between two attempts of a batch (on its sending thread)
    during_sleep: list[Callable[[], object]] = field(default_factory=list)
    app: bootstrap.App = field(init=False)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        if self.during_sleep:
            self.during_sleep.pop(0)()

    def deliver(self) -> DeliveryReport:
        return self.app.publisher.deliver("p")

    def stock(self, sku: str, quantity: int) -> None:
        """Set a SKU's level (queues its ATS), one second after the previous change."""
        self.clock.advance(1)
        self.app.commands.set_stock("p", sku, quantity, None)

    def rows(self, state: str | None = None, kind: str | None = None) -> list[OutboxRecord]:
        with self.app.store.read() as tx:
            return tx.outbox.rows(tx.partners.id_of("p"), state=state, kind=kind)

    def states(self) -> Counter[str]:
        return Counter(row.state for row in self.rows())

    def posts(self) -> list[Recorded]:
        return [r for r in self.partner.requests if r.method == "POST"]

    def app_ats(self) -> dict[str, int]:
        with self.app.store.read() as tx:
            return {view.sku: view.ats for view in queries.ats(tx, "p")}


RigFactory = Callable[..., Rig]


@pytest.fixture
def partner() -> Iterator[FakePartner]:
    with running(token=TOKEN) as served:
        yield served


@pytest.fixture
def rig(tmp_path: Path, partner: FakePartner, monkeypatch: pytest.MonkeyPatch) -> Iterator[RigFactory]:
    """rig(batch_size=3, ...) -> an app whose partner "p" delivers to the fake partner (delivery options given)."""
    made: list[bootstrap.App] = []
    monkeypatch.setenv(TOKEN_ENV, TOKEN)

    def factory(api: dict[str, Any] | None = None, **delivery: Any) -> Rig:
        # unless a test says otherwise: one attempt per pass, short backoff, a breaker that does not get in the way
        options = {"retries": 1, "backoff_initial": 0.5, "backoff_max": 2.0, "breaker_threshold": 100} | delivery
        api_options = {"base_url": partner.url, "token_env": TOKEN_ENV, "connect_timeout": 2.0, "read_timeout": 2.0}
        folder = tmp_path / f"app{len(made)}"  # a store of its own per app
        folder.mkdir()
        path = write_config(
            folder, {"p": {"stock_mode": "simple", "api": api_options | (api or {}), "delivery": options}}
        )
        config = settings.load(path, environ={})
        clock = FakeClock()
        store = SqlStore.open(config.store.url)
        bootstrap.sync_partners(store, config, clock)
        made_rig = Rig(partner, clock)
        made_rig.app = bootstrap.wire(config, store, clock, sleep=made_rig.sleep)
        made.append(made_rig.app)
        return made_rig

    yield factory
    for app in made:
        app.close()


def due_in(rig: Rig, row: OutboxRecord) -> float:
    assert row.next_attempt_at is not None
    return (row.next_attempt_at - rig.clock()) / SECOND


def past_next_attempt(rig: Rig) -> None:
    """Move the clock just past the latest next_attempt_at of the pending messages."""
    rig.clock.now = max(r.next_attempt_at or 0 for r in rig.rows("pending")) + SECOND


# --- what is sent, where, and how ------------------------------------------------------------------------------


def test_every_kind_is_posted_to_its_path_with_a_key_and_the_token(rig: RigFactory) -> None:
    r = rig()
    r.stock("S1", 10)
    r.stock("S2", 4)
    r.clock.advance(1)
    r.app.commands.set_cap("p", "S1", "A", "C", 5)
    r.clock.advance(1)
    r.app.commands.place("p", "O1", [RequestedLine("S1", 2, "A", "C")])
    r.clock.advance(1)
    r.app.commands.set_status("p", "O1", OrderStatus.INVOICING)  # an order export
    r.clock.advance(1)
    r.app.commands.set_status("p", "O1", OrderStatus.CLOSED)  # an order closed
    assert {row.kind for row in r.rows("pending")} == set(PATHS)

    report = r.deliver()

    posts = r.posts()
    assert sorted(p.path for p in posts) == sorted(PATHS.values())
    assert all(p.headers.get("Authorization") == f"Bearer {TOKEN}" for p in posts)
    assert all(p.headers.get("Content-Type") == "application/json" for p in posts)
    keys = [p.idempotency_key for p in posts]
    assert all(keys)
    assert len(set(keys)) == len(keys)
    assert [p.outcome for p in posts] == ["applied"] * 4
    assert (report.ok, report.batches, report.delivered) == (True, 4, len(r.rows()))
    assert r.rows("pending") == []
    assert set(r.states()) == {"delivered"}
    assert all(row.last_status == 200 and row.delivered_at == r.clock() for row in r.rows())
    assert r.partner.ats_view() == r.app_ats() == {"S1": 8, "S2": 4}
    with r.app.store.read() as tx:
        channel = queries.channel(tx, "p", "S1", "A", "C")
    assert r.partner.channel_view() == {("S1", "A", "C"): channel.ats}
    assert r.partner.arrivals("order_export") == Counter({"O1": 1})
    assert r.partner.arrivals("order_closed") == Counter({"O1": 1})
    [closed] = r.partner.items("order_closed")
    assert (closed["status"], [line["sku"] for line in closed["lines"]]) == ("closed", ["S1"])


def test_batches_hold_at_most_batch_size_messages(rig: RigFactory) -> None:
    r = rig(batch_size=3)
    for number in range(10):
        r.stock(f"S{number:02}", number + 1)

    report = r.deliver()

    assert [len(p.json()["items"]) for p in r.posts()] == [3, 3, 3, 1]
    assert len({p.idempotency_key for p in r.posts()}) == 4
    assert (report.batches, report.delivered) == (4, 10)
    assert r.partner.ats_view() == r.app_ats() == {f"S{n:02}": n + 1 for n in range(10)}
    assert r.partner.arrivals("ats") == Counter({f"S{n:02}": 1 for n in range(10)})


def test_changes_of_one_sku_before_delivery_are_coalesced_into_the_latest(rig: RigFactory) -> None:
    r = rig()
    for quantity in (5, 7, 9):
        r.stock("A", quantity)
    assert [(row.key, row.value) for row in r.rows(kind="ats")] == [("A", 9)]

    r.deliver()

    [post] = r.posts()
    assert [(item["sku"], item["ats"]) for item in post.json()["items"]] == [("A", 9)]
    assert r.partner.ats_view() == {"A": 9}


def test_a_value_queued_between_two_failed_passes_is_the_one_delivered(rig: RigFactory) -> None:
    r = rig()
    r.stock("A", 5)
    r.stock("B", 3)
    r.partner.script(Lost())  # the partner applies A=5, B=3 but the answer is lost
    assert not r.deliver().ok
    first_key = r.posts()[0].idempotency_key
    r.stock("A", 7)  # A leaves the failed batch; B stays in it
    past_next_attempt(r)

    r.deliver()

    assert r.partner.ats_view() == r.app_ats() == {"A": 7, "B": 3}
    resent = [p for p in r.posts()[1:] if p.idempotency_key == first_key]
    assert [[item["sku"] for item in p.json()["items"]] for p in resent] == [["B"]]
    assert r.partner.replays == [first_key]
    assert [item["ats"] for item in r.partner.items("ats") if item["sku"] == "A"] == [5, 7]
    assert set(r.states()) == {"delivered"}


def test_a_value_queued_while_its_batch_is_retried_in_the_pass_is_delivered_after_it(rig: RigFactory) -> None:
    r = rig(retries=3)
    r.stock("A", 5)
    r.partner.script(Status(500))
    r.during_sleep.append(lambda: r.app.commands.set_stock("p", "A", 8, None))

    reports = [r.deliver(), r.deliver()]  # the pass, then the worker's next one

    # the retry of the claimed batch still carries 5 under its key; 8 follows in a batch of its own, never before
    sent = [(p.outcome, [item["ats"] for item in p.json()["items"]]) for p in r.posts()]
    assert sent == [("status 500", [5]), ("applied", [5]), ("applied", [8])]
    assert r.partner.items("ats")[-1]["ats"] == 8
    assert r.partner.ats_view() == r.app_ats() == {"A": 8}
    assert [(row.value, row.state) for row in r.rows(kind="ats")] == [(8, "delivered")]
    assert all(report.ok for report in reports)


# --- retries within a pass --------------------------------------------------------------------------------------


def test_a_500_is_retried_in_the_pass_after_a_backoff_with_the_same_key(rig: RigFactory) -> None:
    r = rig(retries=3, backoff_initial=0.5)
    r.stock("A", 5)
    r.partner.script(Status(500))

    report = r.deliver()

    first, second = r.posts()
    assert (first.outcome, second.outcome) == ("status 500", "applied")
    assert first.idempotency_key == second.idempotency_key
    assert len(r.sleeps) == 1
    assert 0 < r.sleeps[0] <= 0.5
    assert (report.ok, report.delivered, report.failed_batches) == (True, 1, 0)
    [row] = r.rows()
    assert (row.state, row.last_status, row.last_error) == ("delivered", 200, None)


def test_a_retry_after_within_the_pass_limit_is_honoured(rig: RigFactory) -> None:
    r = rig(retries=3, wait_in_pass_max=10)
    r.stock("A", 5)
    r.partner.script(Status(429, headers={"Retry-After": "2"}))

    report = r.deliver()

    assert r.sleeps == [2.0]
    assert [p.outcome for p in r.posts()] == ["status 429", "applied"]
    assert report.ok
    assert r.partner.ats_view() == {"A": 5}


def test_a_retry_after_beyond_the_pass_limit_ends_the_pass_until_then(rig: RigFactory) -> None:
    r = rig(retries=3, wait_in_pass_max=10)
    r.stock("A", 5)
    r.partner.script(Status(429, headers={"Retry-After": "120"}))

    report = r.deliver()

    assert (report.failed_batches, report.delivered, r.sleeps) == (1, 0, [])
    [row] = r.rows()
    assert (row.state, row.last_status) == ("pending", 429)
    assert due_in(r, row) >= 120
    r.clock.advance(119)
    assert r.deliver().batches == 0
    assert len(r.posts()) == 1  # nothing sent before the time the partner asked for
    r.clock.advance(2)
    assert r.deliver().delivered == 1
    assert [p.outcome for p in r.posts()] == ["status 429", "applied"]
    assert r.partner.ats_view() == {"A": 5}


def test_a_read_timeout_and_a_reset_are_retried(rig: RigFactory) -> None:
    r = rig(api={"read_timeout": 0.3}, retries=3)
    r.stock("A", 5)
    r.partner.script(Slow(10), Reset())

    report = r.deliver()

    posts = r.posts()
    assert [p.outcome for p in posts] == ["slow", "reset", "applied"]
    assert len({p.idempotency_key for p in posts}) == 1
    assert len(r.sleeps) == 2
    assert report.ok
    assert r.partner.ats_view() == {"A": 5}
    assert r.partner.arrivals("ats") == Counter({"A": 1})


def test_a_lost_answer_is_resent_with_the_same_key_and_applied_once(rig: RigFactory) -> None:
    r = rig(retries=3)
    r.stock("A", 5)
    r.stock("B", 6)
    r.partner.script(Lost())

    report = r.deliver()

    first, second = r.posts()
    assert (first.outcome, second.outcome) == ("lost applied", "replay")
    assert first.idempotency_key == second.idempotency_key
    assert r.partner.replays == [first.idempotency_key]
    assert r.partner.arrivals("ats") == Counter({"A": 1, "B": 1})
    assert report.ok
    assert set(r.states()) == {"delivered"}


# --- refusals, dead letter and the breaker ----------------------------------------------------------------------


def test_a_400_is_not_retried_its_batch_goes_to_dead_letter_and_the_others_go_on(rig: RigFactory) -> None:
    r = rig(batch_size=2, retries=3)
    for sku in ("A", "B", "C", "D"):
        r.stock(sku, 1)
    r.partner.script(Status(400, body='{"error": "unknown sku A"}'))

    report = r.deliver()

    assert [p.outcome for p in r.posts()] == ["status 400", "applied"]
    assert r.sleeps == []
    assert (report.dead, report.delivered, report.batches) == (2, 2, 1)
    dead = r.rows("dead")
    assert [row.key for row in dead] == ["A", "B"]
    assert all(row.last_status == 400 and "unknown sku A" in (row.last_error or "") for row in dead)
    assert all(row.attempts == 1 for row in dead)
    assert r.partner.ats_view() == {"C": 1, "D": 1}


def test_a_401_dead_letters_the_batch_and_opens_the_breaker_leaving_the_rest(
    rig: RigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    r = rig(batch_size=1, retries=3)
    for sku in ("A", "B", "C"):
        r.stock(sku, 1)

    report = r.deliver()

    assert [p.outcome for p in r.posts()] == ["unauthorized"]
    assert (report.dead, report.breaker_open) == (1, True)
    [dead] = r.rows("dead")
    assert (dead.key, dead.last_status) == ("A", 401)
    untouched = r.rows("pending")
    assert [row.key for row in untouched] == ["B", "C"]
    assert all((row.attempts, row.batch_id, row.next_attempt_at) == (0, None, None) for row in untouched)
    assert r.deliver().breaker_open
    assert len(r.posts()) == 1


def test_a_message_goes_to_dead_letter_after_max_attempts(rig: RigFactory) -> None:
    r = rig(max_attempts=3)
    r.stock("A", 5)
    r.partner.script(Status(500), Status(503), Status(500))

    states = []
    for _ in range(3):
        report = r.deliver()
        [row] = r.rows()
        states.append((row.state, row.attempts))
        if row.state == "pending":
            past_next_attempt(r)

    assert states == [("pending", 1), ("pending", 2), ("dead", 3)]
    assert report.dead == 1
    assert r.rows()[0].last_status == 500
    r.clock.advance(3600)
    assert r.deliver().batches == 0
    assert len(r.posts()) == 3


def test_a_message_older_than_max_age_goes_to_dead_letter_when_an_attempt_fails(rig: RigFactory) -> None:
    r = rig(max_age_hours=1)
    r.stock("OLD", 5)
    r.clock.advance(2 * 3600)
    r.stock("NEW", 6)
    r.partner.script(Status(500))

    report = r.deliver()  # both fit one batch
    assert {row.key: row.state for row in r.rows()} == {"OLD": "dead", "NEW": "pending"}
    assert (report.dead, report.failed_batches) == (1, 1)

    r2 = rig(max_age_hours=1)
    r2.stock("OLD", 5)
    r2.clock.advance(2 * 3600)
    r2.deliver()
    assert [row.state for row in r2.rows()] == ["delivered"]  # age matters only when an attempt fails


def test_the_breaker_opens_after_threshold_failed_passes_then_lets_one_probe_through(rig: RigFactory) -> None:
    r = rig(batch_size=1, breaker_threshold=2, breaker_pause=60)
    for sku in ("A", "B", "C"):
        r.stock(sku, 1)
    r.partner.script(Status(500), Status(500))

    assert not r.deliver().breaker_open
    past_next_attempt(r)
    assert r.deliver().breaker_open
    assert len(r.posts()) == 2

    past_next_attempt(r)
    closed = r.deliver()
    assert closed.breaker_open
    assert closed.batches == 0
    assert len(r.posts()) == 2  # the open breaker sent nothing

    r.partner.script(Status(500))
    r.clock.advance(60)
    failed_probe = r.deliver()
    assert len(r.posts()) == 3  # one probe batch, and the breaker opened again
    assert failed_probe.breaker_open

    r.clock.advance(60)
    probe = r.deliver()
    assert (probe.breaker_open, probe.delivered, probe.batches) == (False, 3, 3)
    assert r.app.publisher.breaker("p").open_until is None
    assert r.partner.ats_view() == {"A": 1, "B": 1, "C": 1}


# --- revive and crashes -----------------------------------------------------------------------------------------


def test_revive_requeues_dead_messages_but_supersedes_a_value_replaced_since(rig: RigFactory) -> None:
    r = rig()
    r.stock("A", 5)
    r.stock("B", 3)
    r.partner.script(Status(422, body="nope"))
    assert r.deliver().dead == 2
    r.stock("A", 7)  # a newer A since it went to dead letter

    with r.app.store.write() as tx:
        assert tx.outbox.revive(tx.partners.id_of("p"), None, r.clock()) == (1, 1)
    assert {(row.key, row.value, row.state) for row in r.rows(kind="ats")} == {
        ("A", 5, "superseded"),
        ("A", 7, "pending"),
        ("B", 3, "pending"),
    }

    report = r.deliver()

    assert report.delivered == 2
    assert [(item["sku"], item["ats"]) for item in r.posts()[-1].json()["items"]] == [("B", 3), ("A", 7)]
    assert r.partner.ats_view() == r.app_ats() == {"A": 7, "B": 3}


def test_a_batch_sent_before_a_crash_is_resent_with_its_key_once_its_lease_expired(rig: RigFactory) -> None:
    r = rig(lease_seconds=300)
    r.stock("A", 5)
    r.stock("B", 6)
    now = r.clock()
    with r.app.store.write() as tx:
        claim = tx.outbox.claim(tx.partners.id_of("p"), "ats", now, 10, now + 300 * SECOND, "crash-batch")
    assert claim is not None
    assert r.app.apis("p").send(claim.kind, claim.batch_id, claim.messages) == 200  # then the worker dies

    r.clock.advance(299)
    assert r.deliver().batches == 0
    assert len(r.posts()) == 1  # still leased: left alone
    r.clock.advance(2)
    report = r.deliver()

    assert [p.idempotency_key for p in r.posts()] == ["crash-batch", "crash-batch"]
    assert r.partner.replays == ["crash-batch"]
    assert r.partner.arrivals("ats") == Counter({"A": 1, "B": 1})
    assert report.delivered == 2
    assert set(r.states()) == {"delivered"}


# --- re-sends and revivals --------------------------------------------------------------------------------------


def test_revive_of_two_dead_values_of_one_sku_delivers_the_newer(rig: RigFactory) -> None:
    r = rig()
    r.partner.script(Status(400), Status(400))
    r.stock("A", 5)
    r.deliver()
    r.stock("A", 7)
    r.deliver()
    assert [(row.value, row.state) for row in r.rows(kind="ats")] == [(5, "dead"), (7, "dead")]

    with r.app.store.write() as tx:
        assert tx.outbox.revive(tx.partners.id_of("p"), None, r.clock()) == (1, 1)
    r.deliver()

    assert r.partner.ats_view() == {"A": 7}


def test_a_batch_resent_after_batch_size_was_lowered_is_applied_whole(rig: RigFactory) -> None:
    r = rig(batch_size=3)
    for sku in ("A", "B", "C"):
        r.stock(sku, 1)
    r.partner.script(Status(500))
    r.deliver()
    config = r.app.settings
    old = config.partners["p"]
    delivery = old.delivery.model_copy(update={"batch_size": 2})
    smaller = config.model_copy(update={"partners": {"p": old.model_copy(update={"delivery": delivery})}})
    restarted = Publisher(r.app.store, smaller, r.clock, bootstrap.senders(smaller, r.app.apis), sleep=r.sleep)
    past_next_attempt(r)

    restarted.deliver("p")

    assert set(r.states()) == {"delivered"}
    assert r.partner.ats_view() == {"A": 1, "B": 1, "C": 1}


# --- logs -------------------------------------------------------------------------------------------------------


def test_delivery_events_are_logged_with_their_context(rig: RigFactory) -> None:
    configure("json", None, "info")
    r = rig(retries=2, batch_size=1)
    r.stock("A", 5)
    r.partner.script(Status(500), Status(503), Status(400, body="bad"))

    started = r.clock()
    with structlog.testing.capture_logs() as events:
        r.deliver()  # 500, retried in the pass, 503: due again later
        [row] = r.rows("pending")
        past_next_attempt(r)
        r.deliver()  # 400: dead letter
        r.stock("B", 1)
        r.deliver()  # delivered

    by_event: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_event.setdefault(event["event"], []).append(event)
    attempts = by_event["delivery_attempt"]
    assert [(e["status"], e["attempt"]) for e in attempts] == [(500, 1), (503, 2), (400, 1), (200, 1)]
    for event in attempts + by_event["delivery_retry"] + by_event["delivery_dead"]:
        assert (event["partner"], event["kind"], event["batch_size"]) == ("p", "ats", 1)
        assert {"status", "attempt"} <= set(event)
    retries = by_event["delivery_retry"]
    assert [(e["status"], e["in_pass"]) for e in retries] == [(500, True), (503, False)]
    assert started <= instant.parse(retries[0]["next_attempt_at"]) <= started + SECOND // 2  # backoff_initial
    assert row.next_attempt_at is not None
    assert retries[1]["next_attempt_at"] == instant.to_iso(row.next_attempt_at)
    [dead] = by_event["delivery_dead"]
    assert (dead["status"], dead["attempt"], dead["reason"]) == (400, 1, "refused")
    assert all(TOKEN not in repr(event) for event in events)


def test_a_batch_given_back_unsent_frees_a_value_replaced_meanwhile(rig: RigFactory) -> None:
    """A claimed batch that was never sent is given back whole: a value replaced while it was claimed is due
    again at once, not after the lease."""
    r = rig()
    r.stock("A", 5)
    r.stock("B", 3)
    now = r.clock()
    with r.app.store.write() as tx:
        claim = tx.outbox.claim(tx.partners.id_of("p"), "ats", now, 10, now + 300_000_000, "never-sent")
    assert claim is not None
    r.stock("A", 7)  # replaces the claimed value: it leaves the batch

    with r.app.store.write() as tx:
        tx.outbox.unclaim(claim)
    report = r.deliver()

    assert report.delivered == 2
    assert r.partner.ats_view() == {"A": 7, "B": 3}
    assert "never-sent" not in {key for _, key, _ in r.partner.batches}


def test_basic_credentials_a_partner_echoes_are_redacted_in_every_form(tmp_path: Path) -> None:
    """A partner answering 400 with our basic credentials echoed (the header, its base64, `user:password`): the
    log, the outbox's last_error and `gateway outbox --dead --json` keep its answer but show none of them."""
    password = "echo-s3cret-pw"  # noqa: S105 - the fake partner's password, not a secret
    encoded = base64.b64encode(f"gateway:{password}".encode()).decode()
    secret = tmp_path / "partner.password"
    secret.write_text(password, encoding="utf-8")
    log = io.StringIO()
    with running(token=None, basic=("gateway", password)) as partner:
        echoed = {"error": "not allowed", "authorization": f"Basic {encoded}", "as_sent": encoded}
        partner.script(Status(400, json.dumps(echoed | {"as_text": f"gateway:{password}"})))
        api = {"base_url": partner.url, "username": "gateway", "password_file": str(secret)}
        path = write_config(tmp_path, {"p": {"stock_mode": "simple", "api": api, "delivery": {"retries": 1}}})
        configure("json", log, "debug")
        app = bootstrap.build(settings.load(path, environ={}), clock=FakeClock())
        try:
            app.commands.set_stock("p", "A", 5, None)
            assert app.publisher.deliver("p").dead == 1
            with app.store.read() as tx:
                [row] = tx.outbox.rows(tx.partners.id_of("p"), state="dead")
        finally:
            app.close()
        assert partner.requests[0].headers["Authorization"] == f"Basic {encoded}"  # what it echoed is what we sent

    listed = CliRunner().invoke(cli.cli, ["--config", str(path), "outbox", "--partner", "p", "--dead", "--json"])

    assert listed.exit_code == 0, listed.output
    [message] = json.loads(listed.stdout)["messages"]
    assert "not allowed" in message["last_error"]  # the partner's answer is kept, its secrets are not
    assert "delivery_dead" in log.getvalue()
    for shown in (log.getvalue(), row.last_error or "", listed.output):
        for form in (password, f"gateway:{password}", encoded, encoded.rstrip("=")):
            assert form not in shown
