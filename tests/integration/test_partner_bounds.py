"""A careless or hostile partner API, served for real on 127.0.0.1: pages too large (plain or a gzip bomb), answers
that trickle for ever, redirects to elsewhere. None of them stalls a poll or a delivery, and nothing of them is
applied.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway import bootstrap
from gateway.logs import configure
from gateway.service import queries
from gateway.store.port import LedgerRecord
from gateway.worker import Worker
from tests.conftest import AppFactory, FakeClock, write_config
from tests.support.hostile import Answer, HostilePartner
from tests.support.partner import FakePartner, Status

MIB = 1024 * 1024
LIMIT = MIB  # api.max_page_bytes in these tests
AS_OF = "2026-01-01T00:00:00Z"
Events = list[dict[str, Any]]


@pytest.fixture
def hostile() -> Iterator[HostilePartner]:
    with HostilePartner() as running:
        yield running


@pytest.fixture
def fake() -> Iterator[FakePartner]:
    with FakePartner(token=None) as running:
        yield running


@pytest.fixture
def events() -> Iterator[Events]:
    """The structlog events of the test, every level."""
    configure("json", None, "debug")
    with structlog.testing.capture_logs() as captured:
        yield captured


def api_partner(url: str, **api: Any) -> dict[str, Any]:
    """A partner polling (and delivering to) the API at `url`, without credentials, pages of 1 MiB at most."""
    options = {"base_url": url, "page_limit": 100, "failed": "api-failed", "max_page_bytes": LIMIT}
    delivery = {"retries": 1, "breaker_threshold": 100}
    return {"stock_mode": "advanced", "api": options | api, "delivery": delivery}


def page(count: int = 2) -> bytes:
    items = [{"sku": f"S{n}", "quantity": n + 1, "as_of": AS_OF} for n in range(count)]
    return json.dumps({"items": items, "next_cursor": str(count), "has_more": False}).encode()


def gzip_bomb(inflated: int, members: int = 1) -> bytes:
    """A gzip body of about inflated / 1000 bytes that inflates to `inflated` zero bytes (in `members` members,
    one after the other, as gzip allows)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: with the gzip header and trailer
    zeros = bytes(MIB)
    member = b"".join([*(compressor.compress(zeros) for _ in range(inflated // members // MIB)), compressor.flush()])
    return member * members


def held(app: bootstrap.App) -> dict[str, int]:
    with app.store.read() as tx:
        return {view.sku: view.stock for view in queries.ats(tx, "p")}


def cursor(app: bootstrap.App) -> str | None:
    with app.store.read() as tx:
        return tx.feeds.cursor(tx.partners.id_of("p"), "stock")


def ledger(app: bootstrap.App) -> list[LedgerRecord]:
    with app.store.read() as tx:
        return list(reversed(tx.ledger.entries(tx.partners.id_of("p"))))


def named(events: Events, name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    """Wait until `condition()` holds; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{getattr(condition, '__name__', condition)} did not hold within {timeout} s")
        time.sleep(0.02)


# --- bounded pages -------------------------------------------------------------------------------------------


BIG = 64 * MIB


@functools.cache
def bomb() -> bytes:
    """128 KiB of gzip, inflating to 128 MiB."""
    return gzip_bomb(2 * BIG, members=8)


def gzip_answer(body: bytes) -> Answer:
    return Answer(headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, body=body)


@pytest.mark.parametrize(
    ("answer", "first_bytes"),
    [
        pytest.param(Answer(body=b"x" * 65536, repeat=BIG // 65536), b"x", id="plain-with-length"),
        pytest.param(Answer(body=b"x" * 65536, repeat=BIG // 65536, length=False), b"x", id="plain-until-close"),
        pytest.param(None, b"\0", id="gzip-bomb"),
    ],
)
def test_a_page_over_max_page_bytes_is_refused_too_large_and_only_an_excerpt_is_kept(
    make_app: AppFactory,
    hostile: HostilePartner,
    tmp_path: Path,
    events: Events,
    answer: Answer | None,
    first_bytes: bytes,
) -> None:
    """A 64 MiB page (or a 128 KiB gzip body inflating to 128 MiB) against a 1 MiB limit: reading stops past the
    limit, the page is refused as `too_large` (cursor kept, a `rejected` ledger entry, `page_rejected`), and
    only its first 64 KiB are kept aside, with the size read and the sha256 of what was read."""
    answer = answer or gzip_answer(bomb())
    hostile.answer("/v1/stock", answer)
    app = make_app(p=api_partner(hostile.url))

    report = app.feeds.poll("p", "stock")
    again = app.feeds.poll("p", "stock")  # the same page: recognised, not kept twice

    [refused] = report.pages
    assert (refused.result.outcome, refused.result.reason, report.error, report.cursor) == (
        "rejected",
        "too_large",
        None,
        None,
    )
    assert [(p.result.outcome, p.repeat) for p in again.pages] == [("rejected", True)]
    assert (held(app), cursor(app)) == ({}, None)
    [entry] = ledger(app)
    assert (entry.outcome, entry.size) == ("rejected", LIMIT + 1)
    assert entry.error is not None
    assert f"too_large: the page is larger than {LIMIT} bytes" in entry.error
    assert json.loads(entry.report or "{}")["reason"] == "too_large"

    kept = tmp_path / "api-failed" / "p"
    excerpt, report_name = sorted(p.name for p in kept.iterdir())
    assert excerpt.startswith("stock-")
    assert excerpt.endswith(".excerpt")
    assert report_name == excerpt + ".error.json"
    assert (kept / excerpt).read_bytes() == first_bytes * 65536
    body = json.loads((kept / report_name).read_text(encoding="utf-8"))["body"]
    assert body["limit_bytes"] == LIMIT
    assert body["bytes_read"] == LIMIT + 1
    assert body["complete"] is False
    assert body["sha256_of_bytes_read"] == hashlib.sha256(first_bytes * (LIMIT + 1)).hexdigest()
    assert body["excerpt_bytes"] == 65536
    assert body["bytes_received"] < len(answer.body) * answer.repeat

    [rejected] = [e for e in named(events, "page_rejected") if not e.get("repeat")]
    assert (rejected["reason"], rejected["log_level"]) == ("too_large", "warning")
    assert "too_large" in rejected["error"]
    if answer.repeat > 1:  # the partner could not write the whole page: the gateway stopped reading and hung up
        hostile.wait_answered(2)
        assert hostile.bytes_written < 2 * (len(answer.head()) + BIG)


def test_a_page_within_max_page_bytes_is_applied(make_app: AppFactory, hostile: HostilePartner) -> None:
    """A gzip page, smaller than the limit once inflated, is read and applied as usual."""
    body = page(3)
    gzip = zlib.compressobj(9, zlib.DEFLATED, 31)
    hostile.answer("/v1/stock", gzip_answer(gzip.compress(body) + gzip.flush()))
    app = make_app(p=api_partner(hostile.url, max_page_bytes=len(body)))

    report = app.feeds.poll("p", "stock")

    assert report.ok
    assert held(app) == {"S0": 1, "S1": 2, "S2": 3}


# --- the request deadline ------------------------------------------------------------------------------------


TRICKLES = [
    pytest.param(Answer(body=b" ", repeat=100, every=0.1, length=False), id="body-until-close"),
    pytest.param(Answer(body=b" ", repeat=100, every=0.1), id="body-with-length"),
    pytest.param(Answer(body=page(), trickle_head=True, every=0.1), id="headers"),
]


@pytest.mark.parametrize("answer", TRICKLES)
def test_a_partner_trickling_its_answer_fails_the_poll_at_the_request_deadline(
    make_app: AppFactory, hostile: HostilePartner, events: Events, answer: Answer
) -> None:
    """A byte every 0.1 s (well within the read timeout) holds the poll no longer than `api.request_deadline`:
    the poll fails with `feed_poll_failed` naming the deadline, and nothing is applied."""
    hostile.answer("/v1/stock", answer)
    app = make_app(p=api_partner(hostile.url, request_deadline=0.5, read_timeout=30))

    report = app.feeds.poll("p", "stock")

    assert report.pages == []
    assert report.error is not None
    assert "no complete answer within the request deadline of 0.5s (api.request_deadline)" in report.error
    [failed] = named(events, "feed_poll_failed")
    assert failed["error"] == report.error
    assert (held(app), cursor(app), ledger(app)) == ({}, None, [])


def test_a_partner_trickling_its_answer_to_a_delivery_fails_the_batch_at_the_request_deadline(
    make_app: AppFactory, hostile: HostilePartner
) -> None:
    """A delivery whose answer comes a byte at a time fails at the deadline; its batch waits for the next pass."""
    hostile.answer("/v1/ats", Answer(body=b'{"accepted": 1}', trickle_head=True, every=0.1))
    app = make_app(p=api_partner(hostile.url, request_deadline=0.5, read_timeout=30))
    app.commands.set_stock("p", "A", 5, None)

    report = app.publisher.deliver("p")

    assert (report.delivered, report.failed_batches) == (0, 1)
    with app.store.read() as tx:
        [row] = tx.outbox.rows(tx.partners.id_of("p"))
    assert row.state == "pending"
    assert "request deadline of 0.5s" in (row.last_error or "")


def test_readyz_shows_the_error_of_a_poll_cut_at_the_deadline(tmp_path: Path, hostile: HostilePartner) -> None:
    """In a running worker, a feed that trickles makes /readyz answer 503 with the deadline as its last error."""
    hostile.answer("/v1/stock", Answer(body=b" ", repeat=100, every=0.1, length=False))
    partner = api_partner(hostile.url, request_deadline=0.5, read_timeout=30, feeds=["stock"], deliver=[])
    config = write_config(tmp_path, {"p": partner})
    with config.open("a", encoding="utf-8") as stream:
        stream.write("\n[worker]\nhealth_port = 0\njitter = 0\nshutdown_grace = 5\n")
    worker = Worker(config)
    worker.start()
    try:
        assert worker.health is not None
        url = f"http://127.0.0.1:{worker.health.port}/readyz"

        def readyz() -> tuple[int, dict[str, Any]]:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    return answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                with exc:
                    return exc.code, json.loads(exc.read())

        def failed() -> bool:
            return any(s["last_error"] for s in readyz()[1]["sources"])

        wait_until(failed)
        status, body = readyz()
    finally:
        worker.stop()
    assert status == 503
    [source] = body["sources"]
    assert source["source"] == "api:stock"
    assert "request deadline of 0.5s" in source["last_error"]
    assert any("request deadline" in problem for problem in body["problems"])


# --- redirects -----------------------------------------------------------------------------------------------


def redirect(location: str, status: int = 302) -> Status:
    return Status(status, "", {"Location": location})


def test_a_feed_redirected_to_another_origin_is_refused_and_nothing_applied(
    make_app: AppFactory, fake: FakePartner, events: Events
) -> None:
    """A 302 to another port of the same host (another origin) is not followed: the poll fails saying where it
    was sent (the origin only), and the other server is never asked."""
    with FakePartner(token=None) as elsewhere:
        elsewhere.add_items("stock", [{"sku": "X", "quantity": 9, "as_of": AS_OF}])
        fake.script(redirect(f"{elsewhere.url}/stock?limit=100&secret=abc"), for_feeds=True)
        app = make_app(p=api_partner(fake.url))

        report = app.feeds.poll("p", "stock")

        assert elsewhere.requests == []
    assert report.error is not None
    assert f"redirected to another origin (http://127.0.0.1:{elsewhere.port})" in report.error
    assert "secret=abc" not in report.error
    assert named(events, "feed_poll_failed")[0]["error"] == report.error
    assert (held(app), cursor(app), ledger(app)) == ({}, None, [])


def test_a_feed_redirected_within_its_origin_is_followed_three_times_not_four(
    make_app: AppFactory, fake: FakePartner
) -> None:
    """Three 302s to the same scheme, host and port are followed to the page; a fourth one is refused."""
    fake.add_items("stock", [{"sku": "A", "quantity": 1, "as_of": AS_OF}])
    fake.script(*[redirect("/v1/stock?limit=100")] * 3, for_feeds=True)
    app = make_app(p=api_partner(fake.url))

    followed = app.feeds.poll("p", "stock")

    assert followed.ok
    assert [r.outcome for r in fake.requests] == ["status 302"] * 3 + ["page"]
    assert held(app) == {"A": 1}

    fake.add_items("stock", [{"sku": "B", "quantity": 2, "as_of": AS_OF}])
    fake.script(*[redirect(f"{fake.url}/stock?cursor=1")] * 4, for_feeds=True)
    refused = app.feeds.poll("p", "stock")

    assert refused.error is not None
    assert "redirected more than 3 times" in refused.error
    assert [r.outcome for r in fake.requests[4:]] == ["status 302"] * 4
    assert (held(app), cursor(app)) == ({"A": 1}, "1")


def test_a_delivery_follows_a_307_within_its_origin_and_refuses_other_redirects(
    make_app: AppFactory, fake: FakePartner, clock: FakeClock
) -> None:
    """A 307 (or 308) to the same origin resends the batch there, as it was; a 302 (which would make it a GET) and
    a 307 to another origin are refused, and the batch waits."""
    app = make_app(p=api_partner(fake.url))
    app.commands.set_stock("p", "A", 5, None)
    fake.script(redirect("/v1/ats", 307), redirect(f"{fake.url}/ats", 308))

    assert app.publisher.deliver("p").delivered == 1
    first, second, applied = fake.requests
    assert [first.outcome, second.outcome, applied.outcome] == ["status 307", "status 308", "applied"]
    assert first.body == second.body == applied.body
    assert first.idempotency_key == applied.idempotency_key
    assert fake.ats_view() == {"A": 5}

    with FakePartner(token=None) as elsewhere:
        for refusal, why in [
            (redirect("/v1/ats", 302), "redirected with 302, which would resend the POST as a GET"),
            (
                redirect(f"{elsewhere.url}/ats", 307),
                f"redirected to another origin (http://127.0.0.1:{elsewhere.port})",
            ),
        ]:
            clock.advance(1)
            app.commands.set_stock("p", "A", 6 + len(fake.requests), None)
            fake.script(refusal)
            report = app.publisher.deliver("p")
            assert (report.delivered, report.failed_batches) == (0, 1)
            with app.store.read() as tx:
                [row] = tx.outbox.rows(tx.partners.id_of("p"), state="pending")
            assert why in (row.last_error or "")
            clock.advance(600)  # past the batch's backoff
            assert app.publisher.deliver("p").delivered == 1  # not redirected again: delivered where it belongs
        assert elsewhere.requests == []
