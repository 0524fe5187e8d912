"""Polling a partner's HTTP API for stock and acknowledgements, against the fake partner served on loopback.

Each page is one inbound item: applied with its cursor in one transaction, refused whole when malformed (kept
aside with its error report), recognised as a duplicate when it comes again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway import bootstrap
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.problems import Problem, Problems
from gateway.formats.rows import Kind
from gateway.logs import configure
from gateway.service import queries
from gateway.store.port import FeedPosition, LedgerRecord
from gateway.store.sql.feeds import SqlFeeds
from gateway.store.sql.ledger import SqlLedger
from gateway.transport.http import ApiConfigError, PartnerApi
from tests.conftest import AppFactory, FakeClock, at, write_config
from tests.e2e.test_cli import Cli
from tests.integration.helpers import ats, messages, pending_ats
from tests.support.partner import FakePartner, Slow, Status

pytestmark = pytest.mark.both_stores

TOKEN_ENV = "FEEDS_TEST_PARTNER_TOKEN"  # noqa: S105 - the name of a variable, not a secret
AS_OF = "2026-01-01T00:00:00Z"
Events = list[dict[str, Any]]


class RenamedFieldsApi(PartnerApi):
    """A partner whose feeds live under `api/` and answer `{"data": [{sku, qty, as_of}], "next", "more"}`."""

    FEED_PATHS: Mapping[str, str] = {"stock": "api/stock", "acknowledgements": "api/acknowledgements"}

    def document(self, feed: str, body: bytes, problems: Problems) -> Any:
        raw = super().document(feed, body, problems)
        if not isinstance(raw, dict):
            return raw
        items = [{"sku": i.get("sku"), "quantity": i.get("qty"), "as_of": i.get("as_of")} for i in raw.get("data", [])]
        return {"items": items, "next_cursor": raw.get("next"), "has_more": raw.get("more")}


# --- fixtures and helpers ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "partner-token")


@pytest.fixture
def fake() -> Iterator[FakePartner]:
    with FakePartner() as running:
        yield running


@pytest.fixture
def events() -> Iterator[Events]:
    """The structlog events of the test, every level."""
    configure("json", None, "debug")
    with structlog.testing.capture_logs() as captured:
        yield captured


def api_partner(partner: FakePartner, stock_mode: str = "advanced", **api: Any) -> dict[str, Any]:
    """A partner's configuration polling the fake partner, 100 items a page."""
    options = {"base_url": partner.url, "token_env": TOKEN_ENV, "page_limit": 100, "failed": "api-failed"}
    return {"stock_mode": stock_mode, "api": options | api}


def stock_items(first: int, last: int, as_of: str = AS_OF) -> list[dict[str, Any]]:
    """Items S<first>..S<last - 1>, SKU S<n> holding n + 1 units."""
    return [{"sku": f"S{n:03d}", "quantity": n + 1, "as_of": as_of} for n in range(first, last)]


def page_body(items: list[Any], next_cursor: str | None = "1", has_more: bool = False) -> bytes:
    return json.dumps({"items": items, "next_cursor": next_cursor, "has_more": has_more}).encode()


def held(app: bootstrap.App, partner: str = "p") -> dict[str, int]:
    """Every stock level the store holds for the partner."""
    with app.store.read() as tx:
        return {view.sku: view.stock for view in queries.ats(tx, partner)}


def cursor(app: bootstrap.App, feed: str = "stock", partner: str = "p") -> str | None:
    with app.store.read() as tx:
        return tx.feeds.cursor(tx.partners.id_of(partner), feed)


def ledger(app: bootstrap.App, partner: str = "p") -> list[LedgerRecord]:
    """The partner's ledger, oldest first."""
    with app.store.read() as tx:
        return list(reversed(tx.ledger.entries(tx.partners.id_of(partner))))


def cursors_asked(partner: FakePartner, path: str = "/v1/stock") -> list[str | None]:
    return [r.query.get("cursor") for r in partner.requests if r.path == path]


def named(events: Events, name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


# --- pagination and cursors ----------------------------------------------------------------------------------


def test_a_feed_is_followed_page_by_page_and_each_page_is_one_ledger_item(
    make_app: AppFactory, fake: FakePartner
) -> None:
    """250 items, 100 a page: three GETs, every level stored, the cursor saved at the end, three ledger entries."""
    fake.add_items("stock", stock_items(0, 250))
    app = make_app(p=api_partner(fake))

    report = app.feeds.poll("p", "stock")

    assert cursors_asked(fake) == [None, "100", "200"]
    assert {r.query["limit"] for r in fake.requests} == {"100"}
    assert [(p.result.outcome, p.result.counts.applied, p.next_cursor, p.more) for p in report.pages] == [
        ("applied", 100, "100", True),
        ("applied", 100, "200", True),
        ("applied", 50, "250", False),
    ]
    assert (report.cursor, report.error, report.ok) == ("250", None, True)
    assert held(app) == {f"S{n:03d}": n + 1 for n in range(250)}
    assert ats(app, "p", "S249") == 250
    assert len(pending_ats(app, "p")) == 250
    assert cursor(app) == "250"
    assert [(e.kind, e.outcome, e.rows_applied, e.source) for e in ledger(app)] == [
        ("stock", "applied", 100, "api:stock@start"),
        ("stock", "applied", 100, "api:stock@100"),
        ("stock", "applied", 50, "api:stock@200"),
    ]
    assert [e.id for e in ledger(app)] == [p.result.ledger_id for p in report.pages]


def test_a_poll_stops_at_max_pages_and_the_next_one_goes_on(make_app: AppFactory, fake: FakePartner) -> None:
    """max_pages_per_poll bounds one poll; the saved cursor lets the next poll carry on where it stopped."""
    fake.add_items("stock", stock_items(0, 250))
    app = make_app(p=api_partner(fake, max_pages_per_poll=2))

    first = app.feeds.poll("p", "stock")
    assert (len(first.pages), first.cursor, cursor(app)) == (2, "200", "200")
    assert len(held(app)) == 200

    second = app.feeds.poll("p", "stock")
    assert (len(second.pages), second.cursor) == (1, "250")
    assert cursors_asked(fake) == [None, "100", "200"]
    assert len(held(app)) == 250


def test_an_empty_feed_moves_nothing_and_records_nothing(make_app: AppFactory, fake: FakePartner) -> None:
    """An empty page is no ledger item; the cursor it gives ("0") is saved, and nothing else changes."""
    app = make_app(p=api_partner(fake))
    report = app.feeds.poll("p", "acknowledgements")
    assert [p.result.outcome for p in report.pages] == ["empty"]
    assert (report.ok, report.cursor, cursor(app, "acknowledgements")) == (True, "0", "0")
    assert ledger(app) == []


def test_the_saved_cursor_survives_a_restart_and_only_new_items_are_applied(
    make_app: AppFactory, fake: FakePartner
) -> None:
    """A new app on the same configuration and store asks for the page after the saved cursor, not the start."""
    fake.add_items("stock", stock_items(0, 150))
    first = make_app(p=api_partner(fake))
    assert first.feeds.poll("p", "stock").cursor == "150"
    first.close()
    fake.add_items("stock", stock_items(150, 180))
    asked_before = len(fake.requests)

    second = make_app(p=api_partner(fake))
    report = second.feeds.poll("p", "stock")

    assert [r.query.get("cursor") for r in fake.requests[asked_before:]] == ["150"]
    assert [(p.result.outcome, p.result.counts.applied) for p in report.pages] == [("applied", 30)]
    assert (report.cursor, cursor(second)) == ("180", "180")
    assert held(second) == {f"S{n:03d}": n + 1 for n in range(180)}
    assert [(e.source, e.rows_applied) for e in ledger(second)] == [
        ("api:stock@start", 100),
        ("api:stock@100", 50),
        ("api:stock@150", 30),
    ]


# --- a page and its cursor commit together -------------------------------------------------------------------


def test_a_crash_before_the_cursor_is_saved_rolls_the_whole_page_back(
    make_app: AppFactory, fake: FakePartner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fails while saving the cursor after page 2: page 1 stays, page 2 is not applied at all,
    and the next poll applies page 2 (and 3) cleanly from the cursor page 1 left."""
    fake.add_items("stock", stock_items(0, 250))
    app = make_app(p=api_partner(fake))
    real = SqlFeeds.set_cursor

    def crash(self: SqlFeeds, partner_id: int, feed: str, position: FeedPosition, *rest: Any) -> None:
        if position.cursor == "200":
            raise RuntimeError("the process died here")
        real(self, partner_id, feed, position, *rest)

    with monkeypatch.context() as patch:
        patch.setattr(SqlFeeds, "set_cursor", crash)
        with pytest.raises(RuntimeError, match="died"):
            app.feeds.poll("p", "stock")

    assert cursor(app) == "100"
    assert held(app) == {f"S{n:03d}": n + 1 for n in range(100)}
    assert set(pending_ats(app, "p")) == {f"S{n:03d}" for n in range(100)}
    assert [(e.source, e.outcome) for e in ledger(app)] == [("api:stock@start", "applied")]

    report = app.feeds.poll("p", "stock")

    assert cursors_asked(fake) == [None, "100", "100", "200"]
    assert [p.result.outcome for p in report.pages] == ["applied", "applied"]
    assert (report.cursor, cursor(app)) == ("250", "250")
    assert held(app) == {f"S{n:03d}": n + 1 for n in range(250)}
    assert [e.source for e in ledger(app)] == ["api:stock@start", "api:stock@100", "api:stock@200"]


def test_pages_polled_again_are_harmless_and_a_replayed_sequence_is_a_duplicate(
    make_app: AppFactory, fake: FakePartner, clock: FakeClock
) -> None:
    """The cursor set back to an older one: the pages come again. The first follows another page than it did
    the first time, so it is applied again (its levels and as_of are the stored ones: nothing moves); the next
    follows the same page as before: a duplicate of its first application. Nothing is re-queued."""
    fake.add_items("stock", stock_items(0, 250))
    app = make_app(p=api_partner(fake))
    applied = app.feeds.poll("p", "stock")
    levels = held(app)
    queued = messages(app, "p", "ats")
    with app.store.write() as tx:
        tx.feeds.set_cursor(tx.partners.id_of("p"), "stock", FeedPosition("100", None), None, clock())
    clock.advance(60)

    report = app.feeds.poll("p", "stock")

    assert cursors_asked(fake)[3:] == ["100", "200"]
    assert [(p.result.outcome, p.result.duplicate_of) for p in report.pages] == [
        ("applied", None),
        ("duplicate", applied.pages[2].result.ledger_id),
    ]
    assert report.pages[0].result.ats_changes == 0
    assert (report.ok, report.cursor, cursor(app)) == (True, "250", "250")
    assert held(app) == levels
    assert messages(app, "p", "ats") == queued
    assert [e.outcome for e in ledger(app)] == ["applied"] * 4 + ["duplicate"]


def test_a_page_repeating_an_older_one_is_news_the_same_page_again_is_not(
    make_app: AppFactory, fake: FakePartner
) -> None:
    """A snapshot feed at a constant cursor without as_of: A=5, then A=3, then A=5 again is applied (the level
    moved back); the same page asked again right after is a duplicate."""
    app = make_app(p=api_partner(fake))
    bodies = [
        page_body([{"sku": "A", "quantity": quantity}], next_cursor="7", has_more=False) for quantity in (5, 3, 5, 5)
    ]
    outcomes = []
    for body in bodies:
        fake.break_page("stock", None, body)
        fake.break_page("stock", "7", body)
        report = app.feeds.poll("p", "stock")
        assert report.error is None, report.error
        outcomes.append([page.result.outcome for page in report.pages])

    assert outcomes == [["applied"], ["applied"], ["applied"], ["duplicate"]]
    assert held(app) == {"A": 5}


def test_a_page_another_poller_applied_meanwhile_is_a_duplicate(
    make_app: AppFactory, fake: FakePartner, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pollers of one feed race: the look-up misses the other's apply, the ledger's unique claim catches it."""
    fake.add_items("stock", stock_items(0, 3))
    app = make_app(p=api_partner(fake))
    app.feeds.poll("p", "stock")
    with app.store.write() as tx:
        tx.feeds.set_cursor(tx.partners.id_of("p"), "stock", FeedPosition(None, None), None, clock())
    real = SqlLedger.applied
    calls: list[str] = []

    def racing(self: SqlLedger, *args: Any, **kwargs: Any) -> int | None:
        calls.append("look-up")
        return None if len(calls) == 1 else real(self, *args, **kwargs)  # the race: the first look-up saw nothing

    monkeypatch.setattr(SqlLedger, "applied", racing)

    report = app.feeds.poll("p", "stock")

    assert [p.result.outcome for p in report.pages] == ["duplicate"]
    assert cursor(app) == "3"


# --- malformed pages -----------------------------------------------------------------------------------------

GOOD = {"sku": "A1", "quantity": 5, "as_of": AS_OF}


@pytest.mark.parametrize(
    ("body", "expected", "problem"),
    [
        pytest.param(b'{"items": [', "page: the page is not JSON", {"item": None, "field": None}, id="not-json"),
        pytest.param(
            b'{"items": {"sku": "A1"}, "next_cursor": "1", "has_more": false}',
            'page, field items: "items" must be a list, got an object',
            {"item": None, "field": "items"},
            id="items-not-a-list",
        ),
        pytest.param(
            page_body([GOOD, {"sku": "B2", "quantity": -3, "as_of": AS_OF}]),
            "item 2, field quantity: must be a whole number of at least 0, got a negative number",
            {"item": 2, "field": "quantity"},
            id="negative-quantity",
        ),
        pytest.param(
            page_body([GOOD, {"sku": "B2", "quantity": 3, "as_of": "yesterday"}]),
            "item 2, field as_of: 'yesterday' is not an ISO 8601 timestamp",
            {"item": 2, "field": "as_of"},
            id="bad-as-of",
        ),
        pytest.param(
            page_body([GOOD, {"sku": "A1", "quantity": 4, "as_of": AS_OF}]),
            "item 2, field sku: SKU A1 is given again (first at item 1)",
            {"item": 2, "field": "sku"},
            id="duplicate-sku",
        ),
    ],
)
def test_a_malformed_page_is_refused_whole_kept_aside_and_retried_once_mended(
    make_app: AppFactory,
    fake: FakePartner,
    tmp_path: Path,
    events: Events,
    body: bytes,
    expected: str,
    problem: dict[str, Any],
) -> None:
    """Nothing of the page applied (not even its good item), the cursor kept, a `rejected` ledger entry naming
    the item and field, the raw page and its report under `failed`, a `page_rejected` event; mended, it applies."""
    fake.add_items("stock", [GOOD])
    fake.break_page("stock", None, body)
    app = make_app(p=api_partner(fake))

    report = app.feeds.poll("p", "stock")

    [page] = report.pages
    assert (page.result.outcome, report.ok, report.error, report.cursor) == ("rejected", False, None, None)
    assert (held(app), cursor(app), pending_ats(app, "p")) == ({}, None, {})
    [entry] = ledger(app)
    assert (entry.kind, entry.outcome, entry.source, entry.rows_applied) == ("stock", "rejected", "api:stock@start", 0)
    assert entry.error is not None
    assert expected in entry.error
    [listed, *_] = json.loads(entry.report or "{}")["problems"]
    assert {k: listed[k] for k in problem} == problem
    described = Problem(listed["item"], listed["message"], listed["field"], unit="item").describe()
    assert described.startswith(expected)

    kept = tmp_path / "api-failed" / "p"
    names = sorted(p.name for p in kept.iterdir())
    assert len(names) == 2
    raw, report_name = names
    assert raw.startswith("stock-")
    assert report_name == raw + ".error.json"
    assert (kept / raw).read_bytes() == body
    kept_report = json.loads((kept / report_name).read_text(encoding="utf-8"))
    assert (kept_report["outcome"], kept_report["ledger_id"]) == ("rejected", entry.id)
    assert kept_report["problems"][0] == listed

    [rejected] = named(events, "page_rejected")
    assert (rejected["partner"], rejected["kind"], rejected["log_level"]) == ("p", "stock", "warning")
    assert expected in rejected["reason"]
    assert named(events, "page_kept_aside")[0]["file"].endswith(raw)

    fake.mend_page("stock", None)
    mended = app.feeds.poll("p", "stock")

    assert [(p.result.outcome, p.result.counts.applied) for p in mended.pages] == [("applied", 1)]
    assert (held(app), cursor(app)) == ({"A1": 5}, "1")


def test_a_malformed_page_mid_feed_stops_the_poll_where_the_feed_stands(
    make_app: AppFactory, fake: FakePartner
) -> None:
    """Page 1 applies; page 2 is refused: no later page is asked for, and every poll asks for page 2 again."""
    fake.add_items("stock", stock_items(0, 250))
    fake.break_page("stock", "100", b"<html>Bad gateway</html>")
    app = make_app(p=api_partner(fake))

    first = app.feeds.poll("p", "stock")
    again = app.feeds.poll("p", "stock")

    assert [p.result.outcome for p in first.pages] == ["applied", "rejected"]
    assert [p.result.outcome for p in again.pages] == ["rejected"]
    assert (first.cursor, again.cursor, cursor(app)) == ("100", "100", "100")
    assert cursors_asked(fake) == [None, "100", "100"]
    assert len(held(app)) == 100

    fake.mend_page("stock", "100")
    mended = app.feeds.poll("p", "stock")
    assert [p.result.outcome for p in mended.pages] == ["applied", "applied"]
    assert (cursor(app), len(held(app))) == ("250", 250)


# --- acknowledgements ----------------------------------------------------------------------------------------


def _orders(app: bootstrap.App, partner: str) -> None:
    """S1 stock 10; O1 (3 units) in invoicing; O2 (4 units) pending."""
    app.commands.set_stock(partner, "S1", 10, at("2025-12-31T00:00:00Z"))
    app.commands.place(partner, "O1", [RequestedLine("S1", 3)])
    app.commands.set_status(partner, "O1", OrderStatus.INVOICING)
    app.commands.place(partner, "O2", [RequestedLine("S1", 4)])


def test_acknowledgements_close_orders_and_confirm_lines_like_files_do(
    make_app: AppFactory, fake: FakePartner, tmp_path: Path
) -> None:
    """A status item closes its order (order_closed queued); a confirmation item applies as a confirmation file
    row does on a twin partner; an item for an unknown order is refused alone."""
    app = make_app(p=api_partner(fake, "time_based"), q={"stock_mode": "time_based"})
    _orders(app, "p")
    _orders(app, "q")
    assert ats(app, "p", "S1") == 3
    fake.add_items(
        "acknowledgements",
        [
            {"order_id": "O1", "status": "closed"},
            {"order_id": "GHOST", "status": "closed"},
            {"order_id": "O2", "sku": "S1", "confirmed_quantity": 1, "confirmed_at": "2026-01-01T00:00:00Z"},
        ],
    )

    report = app.feeds.poll("p", "acknowledgements")

    [page] = report.pages
    result = page.result
    assert (result.outcome, result.kind, result.counts.applied, result.counts.refused) == (
        "applied",
        "acknowledgements",
        2,
        1,
    )
    assert [(p.line, p.message) for p in result.refusals] == [(2, "order GHOST is unknown")]
    assert (report.cursor, cursor(app, "acknowledgements")) == ("3", "3")
    [entry] = ledger(app)
    assert (entry.kind, entry.outcome, entry.rows_applied, entry.rows_refused) == ("acknowledgements", "applied", 2, 1)
    assert json.loads(entry.report or "{}")["refused"] == [
        {"item": 2, "field": None, "message": "order GHOST is unknown", "reason": "unknown_order"}
    ]
    assert messages(app, "p", "order_closed") == ["O1"]

    # the twin partner takes the same facts from a confirmation file and a status command
    confirmations = tmp_path / "confirmations.csv"
    confirmations.write_text("order_id,sku,confirmed_quantity,confirmed_at\nO2,S1,1,2026-01-01T00:00:00Z\n")
    assert app.ingestor.ingest("q", Kind.CONFIRMATIONS, confirmations).ok
    app.commands.set_status("q", "O1", OrderStatus.CLOSED)
    with app.store.read() as tx:
        by_api = [tx.orders.get(tx.partners.id_of("p"), order) for order in ("O1", "O2")]
        by_file = [tx.orders.get(tx.partners.id_of("q"), order) for order in ("O1", "O2")]
    assert [o.status if o else None for o in by_api] == [OrderStatus.CLOSED, OrderStatus.PENDING]
    assert [(o.status, o.lines) if o else None for o in by_api] == [(o.status, o.lines) if o else None for o in by_file]
    assert by_api[1] is not None
    assert (by_api[1].lines[0].confirmed_quantity, by_api[1].lines[0].confirmed_at) == (1, at(AS_OF))
    # O1 closed but unconfirmed still holds 3, O2 now holds its confirmed 1
    assert ats(app, "p", "S1") == ats(app, "q", "S1") == 6


def test_a_malformed_acknowledgement_refuses_the_page(make_app: AppFactory, fake: FakePartner) -> None:
    """An item that is neither a status move nor a confirmation, or names an unknown status, refuses the page."""
    app = make_app(p=api_partner(fake, "time_based"))
    _orders(app, "p")
    fake.add_items(
        "acknowledgements",
        [{"order_id": "O1", "status": "closed"}, {"order_id": "O2", "status": "shipped"}, {"order_id": "O2"}],
    )

    report = app.feeds.poll("p", "acknowledgements")

    [page] = report.pages
    assert page.result.outcome == "rejected"
    assert [(p.line, p.column) for p in page.result.problems] == [(2, "status"), (3, None)]
    assert cursor(app, "acknowledgements") is None
    assert messages(app, "p", "order_closed") == []
    with app.store.read() as tx:
        order = tx.orders.get(tx.partners.id_of("p"), "O1")
    assert order is not None
    assert order.status == OrderStatus.INVOICING


# --- transport -----------------------------------------------------------------------------------------------


def test_a_failing_feed_reports_the_error_and_keeps_the_cursor(
    make_app: AppFactory, fake: FakePartner, events: Events
) -> None:
    """A 500 on the first GET: no page, the error in the report and a `feed_poll_failed` event; the next poll
    starts from the same place."""
    fake.add_items("stock", stock_items(0, 3))
    fake.script(Status(500), for_feeds=True)
    app = make_app(p=api_partner(fake))

    report = app.feeds.poll("p", "stock")

    assert (report.pages, report.ok, report.cursor, cursor(app)) == ([], False, None, None)
    assert report.error is not None
    assert "HTTP 500" in report.error
    assert "/v1/stock" in report.error
    [failed] = named(events, "feed_poll_failed")
    assert (failed["partner"], failed["feed"], failed["cursor"], failed["log_level"]) == ("p", "stock", None, "warning")
    assert ledger(app) == []

    assert app.feeds.poll("p", "stock").ok
    assert cursors_asked(fake) == [None, None]
    assert cursor(app) == "3"


def test_a_failure_mid_feed_keeps_the_pages_before_it(make_app: AppFactory, fake: FakePartner) -> None:
    """Page 1 served, page 2 answered 500: page 1 and its cursor stay committed; the next poll resumes at 100."""
    fake.add_items("stock", stock_items(0, 150))
    fake.script(Slow(0), Status(500), for_feeds=True)  # Slow(0) serves page 1 at once
    app = make_app(p=api_partner(fake))

    report = app.feeds.poll("p", "stock")

    assert [p.result.outcome for p in report.pages] == ["applied"]
    assert report.error is not None
    assert (report.ok, report.cursor, cursor(app), len(held(app))) == (False, "100", "100", 100)
    assert app.feeds.poll("p", "stock").ok
    assert cursors_asked(fake) == [None, "100", "100"]
    assert len(held(app)) == 150


def test_the_bearer_token_comes_from_the_configured_environment_variable(
    make_app: AppFactory, fake: FakePartner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token is sent as `Authorization: Bearer`; a wrong one is a 401 the report carries."""
    app = make_app(p=api_partner(fake))
    assert app.feeds.poll("p", "stock").ok
    assert fake.requests[0].headers["Authorization"] == "Bearer partner-token"

    monkeypatch.setenv(TOKEN_ENV, "stale-token")
    other = make_app(p=api_partner(fake))
    report = other.feeds.poll("p", "stock")
    assert report.error is not None
    assert "HTTP 401" in report.error
    assert "stale-token" not in report.error
    assert fake.requests[-1].outcome == "unauthorized"


def test_a_missing_token_variable_is_a_clear_configuration_error(
    make_app: AppFactory, fake: FakePartner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Making the adapter names the variable; polling fails the same way, before any request."""
    monkeypatch.delenv(TOKEN_ENV)
    app = make_app(p=api_partner(fake))
    with pytest.raises(ApiConfigError, match=f"environment variable {TOKEN_ENV} .*is not set"):
        app.apis("p")
    with pytest.raises(ApiConfigError, match=TOKEN_ENV):
        app.feeds.poll("p", "stock")
    assert fake.requests == []


# --- a partner adapter ---------------------------------------------------------------------------------------


def test_a_custom_adapter_named_in_the_configuration_reads_its_partners_shape(make_app: AppFactory) -> None:
    """The adapter's paths are asked and its `document` maps `data`/`qty`/`next`/`more` to the reference shape."""
    with FakePartner(prefix="/partner/api") as renamed:
        renamed.break_page(
            "stock",
            None,
            b'{"data": [{"sku": "A1", "qty": 4, "as_of": "2026-01-01T00:00:00Z"}, {"sku": "B2", "qty": 0}],'
            b' "next": "2", "more": true}',
        )
        renamed.break_page("stock", "2", b'{"data": [{"sku": "C3", "qty": 7}], "next": "3", "more": false}')
        config = api_partner(renamed, adapter="tests.integration.test_feeds:RenamedFieldsApi")
        config["api"]["base_url"] = renamed.url.removesuffix("/api")
        app = make_app(p=config)

        assert type(app.apis("p")) is RenamedFieldsApi
        report = app.feeds.poll("p", "stock")

        assert [r.path for r in renamed.requests] == ["/partner/api/stock"] * 2
        assert cursors_asked(renamed, "/partner/api/stock") == [None, "2"]
        assert [(p.result.outcome, p.result.counts.applied) for p in report.pages] == [("applied", 2), ("applied", 1)]
        assert (held(app), cursor(app)) == ({"A1": 4, "B2": 0, "C3": 7}, "3")


# --- the command ---------------------------------------------------------------------------------------------


def test_the_poll_command_prints_the_pages_and_exits_1_on_a_malformed_page(tmp_path: Path, fake: FakePartner) -> None:
    """`gateway poll --partner p --feed stock` in a real process: 0 with the pages applied, 1 on a refused page."""
    fake.add_items("stock", stock_items(0, 2))
    cli = Cli(write_config(tmp_path, {"p": api_partner(fake)}))

    done = cli("poll", "--partner", "p", "--feed", "stock")

    assert "api stock: api:stock@start: applied 2 row(s)" in done.stdout
    assert "api stock: 1 page(s), 1 applied; cursor 2" in done.stdout
    assert cli.ats("p", "S001")["stock"] == 2

    fake.add_items("stock", [{"sku": "S009", "quantity": 9, "as_of": AS_OF}])
    fake.break_page("stock", "2", page_body([{"sku": "S009", "quantity": "nine"}], next_cursor="3"))
    refused = cli("poll", "--partner", "p", "--feed", "stock", expect=1)

    assert "api stock: api:stock@2: rejected, nothing applied: item 1, field quantity" in refused.stderr
    assert "1 page(s), 0 applied; cursor 2" in refused.stdout
    assert cli.ats("p", "S009")["stock"] == 0
    assert any((tmp_path / "api-failed" / "p").glob("stock-*.json.error.json"))


def test_basic_auth_from_a_password_file_is_sent_and_the_password_never_logged(
    make_app: AppFactory, tmp_path: Path, events: Events
) -> None:
    """Basic auth: the username from the configuration, the password from the file it names."""
    secret = tmp_path / "partner.password"
    secret.write_text("s3cret-basic-pw\n", encoding="utf-8")
    with FakePartner(token=None, basic=("gateway", "s3cret-basic-pw")) as partner:
        partner.add_items("stock", stock_items(0, 2))
        options = {"base_url": partner.url, "username": "gateway", "password_file": str(secret), "page_limit": 100}
        app = make_app(p={"stock_mode": "advanced", "api": options})

        report = app.feeds.poll("p", "stock")
        delivered = app.publisher.deliver("p")

        assert report.ok
        assert held(app) == {"S000": 1, "S001": 2}
        assert delivered.delivered == 2
        assert partner.ats_view() == {"S000": 1, "S001": 2}
        assert all(r.headers.get("Authorization", "").startswith("Basic ") for r in partner.requests)
    assert "s3cret-basic-pw" not in json.dumps(events, default=str)


def test_a_wrong_basic_password_fails_the_poll_without_applying_anything(make_app: AppFactory, tmp_path: Path) -> None:
    """The partner answers 401: the poll fails, says so, and the cursor stays."""
    secret = tmp_path / "partner.password"
    secret.write_text("wrong", encoding="utf-8")
    with FakePartner(token=None, basic=("gateway", "right")) as partner:
        partner.add_items("stock", stock_items(0, 2))
        options = {"base_url": partner.url, "username": "gateway", "password_file": str(secret)}
        app = make_app(p={"stock_mode": "advanced", "api": options})

        report = app.feeds.poll("p", "stock")

    assert report.error is not None
    assert "HTTP 401" in report.error
    assert "wrong" not in report.error
    assert held(app) == {}
    assert cursor(app) is None
