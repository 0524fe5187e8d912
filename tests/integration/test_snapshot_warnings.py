"""The seed's warning everywhere (issue 15, item 5): a stock level older than a confirmation the gateway applied for
its SKU (simple mode: the status move that took the units from stock) is applied all the same, and warned about
(`snapshot_predates_confirmation`) by every way a level is set, in one shape (service/items.py ItemWarning):

- `Commands.set_stock` (`gateway stock set`, `PUT stock/{sku}`): logged, and returned as `warnings`;
- a stock file: logged, in its report (`gateway ingest --json`), its ledger entry's report (`gateway ledger --json`)
  and, taken by a source, the report written beside the archived file;
- a stock feed page: logged, and in its ledger entry's report.

A level newer than the confirmation, or any level in a mode where the platform never moves stock, warns of nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from gateway import bootstrap, settings, views
from gateway.access import Tokens
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.problems import Problems
from gateway.formats.rows import Kind
from gateway.logs import configure
from gateway.service.items import ItemWarning
from gateway.store.port import LedgerRecord
from tests.conftest import AppFactory, FakeClock, at, write_config
from tests.integration.helpers import stock
from tests.integration.test_folder_source import P, World, files, no_wait, put, source
from tests.integration.test_platform_api import ENV, TOKEN_A, TOKENS_TOML, auth, serving

pytestmark = pytest.mark.both_stores

Events = list[MutableMapping[str, Any]]
CODE = "snapshot_predates_confirmation"
CONFIRMED_AT = "2026-01-01T00:00:00Z"  # the test clock's start: the status move that takes W1 and W2 from stock
OLDER = "2025-12-15T00:00:00Z"  # after the first levels, before the confirmation
NEWER = "2026-01-01T12:00:00Z"  # after the confirmation (and before the clock, moved on to the next day)


@pytest.fixture
def events() -> Iterator[Events]:
    """The structlog events of the test, every level."""
    configure("json", None, "debug")
    with structlog.testing.capture_logs() as captured:
        yield captured


def warned(events: Events) -> list[tuple[list[str], int]]:
    return [(e["sample_skus"], e["count"]) for e in events if e["event"] == CODE]


def confirmed(app: bootstrap.App, clock: FakeClock, partner: str = "p") -> None:
    """W1, W2 and W3 stocked on 1 December; an order of W1 and W2 confirmed at CONFIRMED_AT (simple mode: their
    units leave stock then); the clock moves on a day, so that NEWER is in the past."""
    for sku in ("W1", "W2", "W3"):
        app.commands.set_stock(partner, sku, 10, at("2025-12-01T00:00:00Z"))
    app.commands.place(partner, "O1", [RequestedLine("W1", 2), RequestedLine("W2", 1)])
    clock.set(CONFIRMED_AT)
    app.commands.set_status(partner, "O1", OrderStatus.CONFIRMED)
    clock.set("2026-01-02T00:00:00Z")


def snapshot(tmp_path: Path, name: str, levels: dict[str, int], as_of: str) -> Path:
    path = tmp_path / name
    path.write_text("sku,quantity,as_of\n" + "".join(f"{s},{q},{as_of}\n" for s, q in levels.items()), "utf-8")
    return path


def entries(app: bootstrap.App, partner: str = "p") -> list[LedgerRecord]:
    """The partner's ledger, newest first."""
    with app.store.read() as tx:
        return tx.ledger.entries(tx.partners.id_of(partner), 100)


def read(body: bytes, _problems: Problems) -> object:
    return json.loads(body)


def stock_page(items: list[dict[str, object]], after: str) -> bytes:
    return json.dumps({"items": items, "next_cursor": after, "has_more": False}).encode()


# commands


def test_a_level_set_by_command_older_than_a_confirmation_is_set_with_a_warning(
    make_app: AppFactory, clock: FakeClock, events: Events
) -> None:
    """The level applies (and its ATS moves); the command returns the warning and logs it, after its own line."""
    app = make_app(p={"stock_mode": "simple"})
    confirmed(app, clock)
    done = app.commands.set_stock("p", "W1", 10, at(OLDER))
    assert done.warnings == [ItemWarning(CODE, ("W1",), 1)]
    assert [(c.sku, c.after) for c in done.changes] == [("W1", 10)]
    assert stock(app, "p", "W1") == 10
    assert warned(events) == [(["W1"], 1)]
    [event] = [e for e in events if e["event"] == CODE]
    assert (event["partner"], event["sku"], event["log_level"]) == ("p", "W1", "warning")
    assert "sold units back" in event["hint"]
    [body] = views.warnings(done.warnings)
    assert (body["warning"], body["skus"], body["count"]) == (CODE, ["W1"], 1)


def test_a_level_newer_than_the_confirmation_or_never_moved_warns_of_nothing(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path, events: Events
) -> None:
    """After the confirmation, or for a SKU no confirmation moved (W3): no warning, by command, file or page."""
    app = make_app(p={"stock_mode": "simple"})
    confirmed(app, clock)
    assert app.commands.set_stock("p", "W1", 9, at(NEWER)).warnings == []
    assert app.commands.set_stock("p", "W3", 9, at(OLDER)).warnings == []
    result = app.ingestor.ingest("p", Kind.STOCK, snapshot(tmp_path, "s.csv", {"W2": 7}, NEWER))
    assert (result.outcome, result.warnings, result.report()["warnings"]) == ("applied", [], [])
    page = app.feeds.ingest_page("p", "stock", stock_page([{"sku": "W2", "quantity": 6}], "1"), None, read)
    assert page.result.warnings == []
    assert [views.ledger_entry(e)["warnings"] for e in entries(app)] == [[], []]
    assert warned(events) == []


def test_advanced_mode_never_warns_the_platform_moves_no_stock(
    make_app: AppFactory, clock: FakeClock, events: Events
) -> None:
    """The warning is the simple mode's: in advanced mode a confirmation moves no stock, an older level is news."""
    app = make_app(p={"stock_mode": "advanced"})
    confirmed(app, clock)
    assert app.commands.set_stock("p", "W1", 10, at(OLDER)).warnings == []
    assert warned(events) == []


# files and pages


def test_a_stock_file_older_than_a_confirmation_carries_the_warning_in_its_report_and_its_ledger_entry(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path, events: Events
) -> None:
    """W1 and W2 predate the confirmation, W3 was never moved: one warning naming the two, counted; the file applies
    whole, exit 0 (ok), and its report and ledger entry carry the warning (the bulk loader on PostgreSQL too)."""
    app = make_app(p={"stock_mode": "simple"})
    confirmed(app, clock)
    path = snapshot(tmp_path, "s.csv", {"W1": 10, "W2": 10, "W3": 4}, OLDER)
    result = app.ingestor.ingest("p", Kind.STOCK, path)
    assert (result.outcome, result.counts.applied, result.ok) == ("applied", 3, True)
    assert result.warnings == [ItemWarning(CODE, ("W1", "W2"), 2)]
    assert result.counts.extra["predates_confirmation"] == 2
    shown = views.ingest_report(result)
    assert shown["warnings"] == [
        {
            "warning": CODE,
            "skus": ["W1", "W2"],
            "count": 2,
            "message": "2 level(s) older than the last confirmation the gateway applied for their SKU (W1, W2):"
            " applied, but such a level may put units already sold back on sale",
        }
    ]
    [entry, *_] = entries(app)
    assert entry.id == result.ledger_id
    assert views.ledger_entry(entry)["warnings"] == shown["warnings"]
    assert json.loads(entry.report or "{}")["refused"] == []
    assert warned(events) == [(["W1", "W2"], 2)]
    names = [e["event"] for e in events]
    assert names.index(CODE) < names.index("file_applied")


def test_a_dry_run_shows_the_warning_it_would_give_and_records_nothing(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path
) -> None:
    """--dry-run: the warning the file would give, and no ledger entry, no level."""
    app = make_app(p={"stock_mode": "simple"})
    confirmed(app, clock)
    before = len(entries(app))
    path = snapshot(tmp_path, "s.csv", {"W1": 10}, OLDER)
    result = app.ingestor.ingest("p", Kind.STOCK, path, dry_run=True)
    assert result.warnings == [ItemWarning(CODE, ("W1",), 1)]
    assert len(entries(app)) == before
    assert stock(app, "p", "W1") == 8


def test_a_rejected_file_has_no_warning_it_applied_nothing(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path
) -> None:
    """An older level beside a malformed row: the file is refused whole, so nothing was set to warn about."""
    app = make_app(p={"stock_mode": "simple"})
    confirmed(app, clock)
    path = tmp_path / "bad.csv"
    path.write_text(f"sku,quantity,as_of\nW1,10,{OLDER}\nW2,many,{OLDER}\n", "utf-8")
    result = app.ingestor.ingest("p", Kind.STOCK, path)
    assert (result.outcome, result.warnings, result.report()["warnings"]) == ("rejected", [], [])
    assert views.ledger_entry(entries(app)[0])["warnings"] == []


def test_a_stock_page_older_than_a_confirmation_carries_the_warning_in_its_ledger_entry(
    make_app: AppFactory, clock: FakeClock, events: Events
) -> None:
    """A feed page is an item like a file: the same warning, logged and kept in its ledger entry's report."""
    app = make_app(p={"stock_mode": "simple"})
    confirmed(app, clock)
    body = stock_page([{"sku": "W2", "quantity": 10, "as_of": OLDER}, {"sku": "W3", "quantity": 5}], "1")
    page = app.feeds.ingest_page("p", "stock", body, None, read)
    assert (page.result.outcome, page.result.counts.applied) == ("applied", 2)
    assert page.result.warnings == [ItemWarning(CODE, ("W2",), 1)]
    [entry, *_] = entries(app)
    assert entry.id == page.result.ledger_id
    assert views.ledger_entry(entry)["warnings"] == views.warnings(page.result.warnings)
    assert warned(events) == [(["W2"], 1)]


# a folder source


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock) -> Iterator[World]:
    built = World(tmp_path, clock)
    yield built
    built.close()


def test_a_file_taken_by_a_source_is_archived_with_its_warning_beside_it(world: World, clock: FakeClock) -> None:
    """A file with nothing refused but a warning gets its report beside the archived file (NAME.error.json, as
    for refused rows); a file without warnings is archived alone."""
    world.configure()
    app = world.app(wait=no_wait)
    confirmed(app, clock, P)
    drop = world.root / "drop"
    put(drop, "older.csv", f"sku,quantity,as_of\nW1,10,{OLDER}\n".encode())
    put(drop, "newer.csv", f"sku,quantity,as_of\nW3,5,{NEWER}\n".encode())
    picked = app.pickup.poll(P, source(app))
    assert sorted((p.file, p.outcome, p.ok) for p in picked) == [
        ("newer.csv", "applied", True),
        ("older.csv", "applied", True),
    ]
    assert files(drop / "archive") == {"older.csv", "older.csv.error.json", "newer.csv"}
    report = json.loads((drop / "archive" / "older.csv.error.json").read_text(encoding="utf-8"))
    assert [(w["warning"], w["skus"], w["count"]) for w in report["warnings"]] == [(CODE, ["W1"], 1)]
    assert (report["file"], report["refused"], report["problems"]) == ("older.csv", [], [])
    [entry] = [e for e in entries(app, P) if e.id == report["ledger_id"]]
    assert views.ledger_entry(entry)["warnings"] == report["warnings"]


# the platform API, on a real server


@pytest.fixture
def simple_api(tmp_path: Path, clock: FakeClock, store_url: str) -> Iterator[tuple[bootstrap.App, Tokens]]:
    """acme in simple mode (bolt beside it, as the tokens name it), with the API's tokens."""
    path = write_config(tmp_path, {"acme": {"stock_mode": "simple"}, "bolt": {"stock_mode": "advanced"}}, store_url)
    path.write_text(path.read_text(encoding="utf-8") + TOKENS_TOML, encoding="utf-8")
    app = bootstrap.build(settings.load(path, environ={}), clock=clock)
    yield app, Tokens.from_settings(app.settings, environ=ENV)
    app.close()


def test_put_stock_answers_the_warning_of_a_level_older_than_a_confirmation(
    simple_api: tuple[bootstrap.App, Tokens], clock: FakeClock
) -> None:
    """Over uvicorn: 200, the level set, `warnings` naming it; a newer level answers an empty list."""
    app, tokens = simple_api
    confirmed(app, clock, "acme")
    with serving(app, tokens) as live:
        older = httpx.put(f"{live.base}/stock/W1", json={"quantity": 10, "as_of": OLDER}, headers=auth(TOKEN_A))
        newer = httpx.put(f"{live.base}/stock/W2", json={"quantity": 10, "as_of": NEWER}, headers=auth(TOKEN_A))
    assert older.status_code == 200, older.text
    body = older.json()
    assert body["ats_changes"] == [{"sku": "W1", "before": 8, "after": 10}]
    assert body["warnings"] == views.warnings([ItemWarning(CODE, ("W1",), 1)])
    assert (newer.status_code, newer.json()["warnings"]) == (200, [])
    assert stock(app, "acme", "W1") == 10
