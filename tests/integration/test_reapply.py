"""The same content again after newer content (`duplicate_of_older`), and applying an item again on purpose: from
the copy kept of a ledger entry (`Ingestor.reapply`) or a file given by path (`force`), on both stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from gateway import bootstrap, views
from gateway.domain.orders import RequestedLine
from gateway.formats.rows import Kind
from gateway.logs import configure
from gateway.service import retention
from gateway.service.retention import NotKept
from gateway.settings import FolderSource
from gateway.store.records import LedgerRecord
from tests.conftest import AppFactory, FakeClock, at
from tests.integration.helpers import ats, pending_ats, stock
from tests.integration.test_folder_source import files, put

pytestmark = pytest.mark.both_stores

P = "p"
DAY = 86_400.0


@pytest.fixture(autouse=True)
def _every_level() -> None:
    """Info and warning events reach structlog's capture_logs (the suite's default lets errors only through)."""
    configure("json", None, "debug")


def snapshot(tmp_path: Path, name: str, quantity: int) -> Path:
    """A stock file setting W1 to `quantity`, rows without as_of (they take the received time)."""
    path = tmp_path / name
    path.write_text(f"sku,quantity\nW1,{quantity}\n", encoding="utf-8")
    return path


def entries(app: bootstrap.App) -> list[LedgerRecord]:
    """The partner's ledger, oldest first."""
    with app.store.read() as tx:
        return list(reversed(tx.ledger.entries(tx.partners.id_of(P))))


def kept_copy(app: bootstrap.App, ledger_id: int | None) -> Path:
    assert ledger_id is not None
    return retention.copy_path(app.settings.retention, P, ledger_id)


def ten_five(app: bootstrap.App, tmp_path: Path, clock: FakeClock) -> tuple[int, int]:
    """W1=10 then W1=5 applied (a minute apart): their ledger entries."""
    first = app.ingestor.ingest(P, Kind.STOCK, snapshot(tmp_path, "w1-10.csv", 10))
    clock.advance(60)
    second = app.ingestor.ingest(P, Kind.STOCK, snapshot(tmp_path, "w1-5.csv", 5))
    assert (first.outcome, second.outcome, stock(app, P, "W1")) == ("applied", "applied", 5)
    assert first.ledger_id is not None
    assert second.ledger_id is not None
    return first.ledger_id, second.ledger_id


# the same content again after newer content


def test_an_older_snapshot_again_stays_a_duplicate_and_warns_naming_both_entries(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """W1=10, W1=5, W1=10 again: the level stays 5; a `duplicate_of_older` warning names the identical entry and
    the one in force, in the log, the result's report and the duplicate's ledger entry; still ok (exit 0)."""
    app = make_app(p={"stock_mode": "advanced"})
    first, second = ten_five(app, tmp_path, clock)
    clock.advance(60)
    with structlog.testing.capture_logs() as captured:
        again = app.ingestor.ingest(P, Kind.STOCK, snapshot(tmp_path, "w1-10-again.csv", 10))
    assert (again.outcome, again.ok, again.duplicate_of, again.in_force) == ("duplicate", True, first, second)
    assert stock(app, P, "W1") == 5
    [warned] = [e for e in captured if e["event"] == "duplicate_of_older"]
    assert (warned["log_level"], warned["duplicate_of"], warned["in_force"]) == ("warning", first, second)
    assert warned["ledger_id"] == again.ledger_id
    report = again.report()
    assert (report["outcome"], report["duplicate_of"], report["reapply_of"]) == ("duplicate", first, None)
    [warning] = report["warnings"]
    assert (warning["warning"], warning["duplicate_of"], warning["in_force"]) == ("duplicate_of_older", first, second)
    assert f"gateway ledger reapply --partner p --id {first}" in warning["message"]
    assert f"older than the content in force (ledger entry {second})" in again.summary()
    duplicate = entries(app)[-1]
    assert (duplicate.id, duplicate.outcome) == (again.ledger_id, "duplicate")
    assert duplicate.report is not None
    assert json.loads(duplicate.report)["warnings"] == [warning]
    assert views.ledger_entry(duplicate)["warnings"] == [warning]


def test_a_duplicate_of_the_content_in_force_is_a_plain_duplicate(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """W1=10, W1=5, W1=5 again: the latest content again is a duplicate without a warning."""
    app = make_app(p={"stock_mode": "advanced"})
    _, second = ten_five(app, tmp_path, clock)
    with structlog.testing.capture_logs() as captured:
        again = app.ingestor.ingest(P, Kind.STOCK, snapshot(tmp_path, "w1-5-again.csv", 5))
    assert (again.outcome, again.duplicate_of, again.in_force, again.warnings) == ("duplicate", second, None, [])
    assert [e["event"] for e in captured if e["event"].startswith("duplicate")] == []
    assert entries(app)[-1].report is None


def test_an_older_orders_file_again_is_a_plain_duplicate(make_app: AppFactory, tmp_path: Path) -> None:
    """Orders (like acknowledgements and confirmations) cannot be rolled back by an older repeat: no warning."""
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock(P, "A", 10, None)
    placing = tmp_path / "o1.csv"
    placing.write_text("order_id,sku,quantity,status\nO1,A,2,pending\n", encoding="utf-8")
    moving = tmp_path / "o1-confirmed.csv"
    moving.write_text("order_id,sku,quantity,status\nO1,A,2,confirmed\n", encoding="utf-8")
    first = app.ingestor.ingest(P, Kind.ORDERS, placing)
    assert app.ingestor.ingest(P, Kind.ORDERS, moving).outcome == "applied"
    again = app.ingestor.ingest(P, Kind.ORDERS, placing)
    assert (again.outcome, again.duplicate_of, again.in_force) == ("duplicate", first.ledger_id, None)
    assert again.warnings == []


def test_an_older_caps_file_again_warns_as_a_snapshot_does(make_app: AppFactory, tmp_path: Path) -> None:
    """Caps set values a newer file replaces, as stock levels do: an older caps file again is duplicate_of_older."""
    app = make_app(p={"stock_mode": "advanced"})
    three, five = tmp_path / "caps-3.csv", tmp_path / "caps-5.csv"
    three.write_text("sku,assembly,collection,max\nA,AS1,C1,3\n", encoding="utf-8")
    five.write_text("sku,assembly,collection,max\nA,AS1,C1,5\n", encoding="utf-8")
    first = app.ingestor.ingest(P, Kind.CAPS, three)
    second = app.ingestor.ingest(P, Kind.CAPS, five)
    again = app.ingestor.ingest(P, Kind.CAPS, three)
    assert (again.outcome, again.duplicate_of, again.in_force) == ("duplicate", first.ledger_id, second.ledger_id)


# applying again on purpose


def test_reapplying_the_first_snapshot_puts_its_level_back_as_a_new_entry_naming_it(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """W1=10, W1=5, then `reapply` of the first: W1 back to 10 (published), a new applied entry naming the first;
    the W1=10 file once more is now the content in force: a plain duplicate."""
    app = make_app(p={"stock_mode": "advanced"})
    first, _ = ten_five(app, tmp_path, clock)
    clock.advance(60)
    with structlog.testing.capture_logs() as captured:
        result = app.ingestor.reapply(P, first)
    assert (result.outcome, result.reapply_of, result.counts.applied) == ("applied", first, 1)
    assert result.ledger_id is not None
    assert result.ledger_id > first
    assert (stock(app, P, "W1"), pending_ats(app, P)) == (10, {"W1": 10})
    assert result.summary().startswith(f"reapply of {first}: {tmp_path / 'w1-10.csv'}: applied again (ledger entry")
    [applied] = [e for e in captured if e["event"] == "file_applied"]
    assert (applied["reapply_of"], applied["ledger_id"]) == (first, result.ledger_id)
    entry = entries(app)[-1]
    assert (entry.id, entry.outcome, entry.reapply_of, entry.rows_applied) == (result.ledger_id, "applied", first, 1)
    assert entry.report is not None
    assert json.loads(entry.report)["reapply_of"] == first
    assert views.ledger_entry(entry)["reapply_of"] == first
    assert kept_copy(app, result.ledger_id).read_bytes() == kept_copy(app, first).read_bytes()
    again = app.ingestor.ingest(P, Kind.STOCK, snapshot(tmp_path, "w1-10-again.csv", 10))
    assert (again.outcome, again.duplicate_of, again.in_force) == ("duplicate", first, None)


def test_a_reapply_dry_run_shows_the_change_and_changes_nothing(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """A dry run of a re-apply: W1 would go 5 -> 10; no entry, no level, no copy."""
    app = make_app(p={"stock_mode": "advanced"})
    first, _ = ten_five(app, tmp_path, clock)
    result = app.ingestor.reapply(P, first, dry_run=True)
    assert (result.outcome, result.dry_run, result.reapply_of) == ("applied", True, first)
    assert [(c.sku, c.before, c.after) for c in result.changes] == [("W1", 5, 10)]
    assert (stock(app, P, "W1"), len(entries(app))) == (5, 2)
    assert sorted(p.name for p in kept_copy(app, first).parent.iterdir()) == sorted(str(e.id) for e in entries(app))


def test_force_applies_a_file_whose_content_was_applied_as_a_new_entry_naming_the_first(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """`force` with the first file's content: applied again (W1 back to 10), its entry naming the first."""
    app = make_app(p={"stock_mode": "advanced"})
    first, _ = ten_five(app, tmp_path, clock)
    forced = app.ingestor.ingest(P, Kind.STOCK, snapshot(tmp_path, "w1-10-again.csv", 10), force=True)
    assert (forced.outcome, forced.reapply_of, stock(app, P, "W1")) == ("applied", first, 10)
    assert [(e.outcome, e.reapply_of) for e in entries(app)] == [("applied", None)] * 2 + [("applied", first)]


def test_force_on_new_content_claims_it_like_any_item(make_app: AppFactory, tmp_path: Path) -> None:
    """Content never applied: `force` applies it as usual (naming no entry); the same content later is a
    duplicate of it, and forcing it twice makes two entries naming it."""
    app = make_app(p={"stock_mode": "advanced"})
    path = snapshot(tmp_path, "w1-7.csv", 7)
    forced = app.ingestor.ingest(P, Kind.STOCK, path, force=True)
    assert (forced.outcome, forced.reapply_of) == ("applied", None)
    assert app.ingestor.ingest(P, Kind.STOCK, path).duplicate_of == forced.ledger_id
    for _ in range(2):
        assert app.ingestor.ingest(P, Kind.STOCK, path, force=True).reapply_of == forced.ledger_id


# the kept copies


def test_applied_and_partly_refused_items_keep_a_copy_rejected_and_duplicates_none(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """A copy per applied entry (some rows refused or not), byte for byte; nothing for a rejected file, a duplicate
    or a dry run."""
    app = make_app(p={"stock_mode": "advanced"})
    good = snapshot(tmp_path, "good.csv", 3)
    partly = tmp_path / "partly.csv"
    partly.write_text("order_id,sku,confirmed_quantity,confirmed_at\nNOPE,W1,1,2019-06-26T11:00:00\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,quantity\nW1,lots\n", encoding="utf-8")
    applied = app.ingestor.ingest(P, Kind.STOCK, good)
    refused = app.ingestor.ingest(P, Kind.CONFIRMATIONS, partly)
    rejected = app.ingestor.ingest(P, Kind.STOCK, bad)
    duplicate = app.ingestor.ingest(P, Kind.STOCK, good)
    dry = app.ingestor.ingest(P, Kind.STOCK, snapshot(tmp_path, "dry.csv", 4), dry_run=True)
    assert (refused.outcome, refused.counts.refused, rejected.outcome, duplicate.outcome) == (
        "applied",
        1,
        "rejected",
        "duplicate",
    )
    assert kept_copy(app, applied.ledger_id).read_bytes() == good.read_bytes()
    assert kept_copy(app, refused.ledger_id).read_bytes() == partly.read_bytes()
    folder = kept_copy(app, applied.ledger_id).parent
    assert {p.name for p in folder.iterdir()} == {str(applied.ledger_id), str(refused.ledger_id)}
    assert dry.ledger_id is not None  # its entry rolled back with its copy never made


def test_copies_older_than_items_days_are_pruned_and_their_reapply_refused_clearly(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """Kept 30 days by the gateway's clock: at 29 days pruning keeps the copy, past 30 it removes it
    (`items_pruned`), and a re-apply of the entry then fails naming the setting."""
    app = make_app(p={"stock_mode": "advanced"})
    first, second = ten_five(app, tmp_path, clock)
    clock.advance(29 * DAY)
    assert retention.prune(app.settings.retention, clock()) == 0
    assert kept_copy(app, first).is_file()
    clock.advance(DAY + 1 - 60)  # the first copy is 30 days and a second old, the second a minute younger
    with structlog.testing.capture_logs() as captured:
        assert retention.prune(app.settings.retention, clock()) == 1
    [pruned] = [e for e in captured if e["event"] == "items_pruned"]
    assert (pruned["pruned"], pruned["days"]) == (1, 30)
    assert (kept_copy(app, first).exists(), kept_copy(app, second).exists()) == (False, True)
    with pytest.raises(NotKept, match=rf"ledger entry {first} of p: its content is not kept any more.*items_days = 30"):
        app.ingestor.reapply(P, first)
    assert (stock(app, P, "W1"), len(entries(app))) == (5, 2)


def test_a_reapply_of_an_entry_that_is_no_applied_item_is_refused(make_app: AppFactory, tmp_path: Path) -> None:
    """A rejected entry, a duplicate, another partner's entry, an unknown id: each refused, nothing applied."""
    app = make_app(p={"stock_mode": "advanced"}, q={"stock_mode": "advanced"})
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,quantity\nW1,lots\n", encoding="utf-8")
    rejected = app.ingestor.ingest(P, Kind.STOCK, bad)
    good = snapshot(tmp_path, "good.csv", 3)
    app.ingestor.ingest(P, Kind.STOCK, good)
    duplicate = app.ingestor.ingest(P, Kind.STOCK, good)
    others = app.ingestor.ingest("q", Kind.STOCK, good)
    for ledger_id in (rejected.ledger_id, duplicate.ledger_id, others.ledger_id, 999):
        assert ledger_id is not None
        with pytest.raises(NotKept, match=rf"ledger entry {ledger_id} is no applied item of p"):
            app.ingestor.reapply(P, ledger_id)


def test_a_copy_that_is_not_its_entrys_content_is_never_applied(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """A copy whose bytes differ from its entry's sha256 (an orphan of a rolled-back item under a reused id, a
    file changed by hand) counts as not kept."""
    app = make_app(p={"stock_mode": "advanced"})
    first, _ = ten_five(app, tmp_path, clock)
    kept_copy(app, first).write_text("sku,quantity\nW1,999\n", encoding="utf-8")
    with pytest.raises(NotKept, match="not kept any more"):
        app.ingestor.reapply(P, first)
    assert stock(app, P, "W1") == 5


def test_items_days_zero_keeps_no_copy(make_app: AppFactory, tmp_path: Path, clock: FakeClock) -> None:
    """retention.items_days = 0: nothing kept, so nothing can be re-applied by its entry."""
    app = make_app(p={"stock_mode": "advanced"})
    app.settings = app.settings.model_copy(
        update={"retention": app.settings.retention.model_copy(update={"items_days": 0})}
    )
    app.ingestor.settings = app.settings
    applied = app.ingestor.ingest(P, Kind.STOCK, snapshot(tmp_path, "w1.csv", 3))
    assert not kept_copy(app, applied.ledger_id).exists()
    with pytest.raises(NotKept):
        app.ingestor.reapply(P, applied.ledger_id or 0)


# what re-applying is for


def test_confirmations_refused_for_an_order_that_arrived_later_apply_when_reapplied(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """time_based: the partner's confirmation of O1 came before O1 itself (refused: unknown order); the order
    arrives; re-applying the confirmations' entry applies them: ATS 10 - 5 ordered -> 10 - 4 confirmed."""
    app = make_app(p={"stock_mode": "time_based"})
    app.commands.set_stock(P, "A", 10, at("2019-06-25T12:00:00"))
    confirmations = tmp_path / "confirmations.csv"
    confirmations.write_text("order_id,sku,confirmed_quantity,confirmed_at\nO1,A,4,2019-06-26T11:00:00\n")
    early = app.ingestor.ingest(P, Kind.CONFIRMATIONS, confirmations)
    assert (early.outcome, early.counts.applied, early.counts.refused) == ("applied", 0, 1)
    assert "order O1 is unknown" in early.refusals[0].message
    app.commands.place(P, "O1", [RequestedLine("A", 5)])
    assert ats(app, P, "A") == 5
    assert early.ledger_id is not None
    again = app.ingestor.reapply(P, early.ledger_id)
    assert (again.outcome, again.counts.applied, again.counts.refused, again.reapply_of) == (
        "applied",
        1,
        0,
        early.ledger_id,
    )
    assert ats(app, P, "A") == 6


# through a folder source


def test_a_folder_source_keeps_the_copy_and_reports_an_older_duplicate_beside_the_archived_file(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """Files dropped in a watched folder: each applied one's staged copy is kept under its ledger entry (and can be
    re-applied); W1=10 dropped again after W1=5 is archived with a report carrying the duplicate_of_older warning."""
    drop = tmp_path / "drop"
    drop.mkdir()
    folder = {"name": "in", "type": "folder", "kind": "stock", "path": "drop"}
    app = make_app(p={"stock_mode": "advanced", "sources": [folder]})
    source = app.settings.partner(P).source("in")
    assert isinstance(source, FolderSource)
    picked = []
    for name, quantity in (("a.csv", 10), ("b.csv", 5), ("c.csv", 10)):
        put(drop, name, f"sku,quantity\nW1,{quantity}\n".encode())
        [one] = app.pickup.poll(P, source)
        picked.append(one)
        clock.advance(60)
    assert [(p.file, p.outcome, p.ok) for p in picked] == [
        ("a.csv", "applied", True),
        ("b.csv", "applied", True),
        ("c.csv", "duplicate", True),
    ]
    first, second, _ = (p.ledger_id for p in picked)
    assert kept_copy(app, first).read_bytes() == (drop / "archive" / "a.csv").read_bytes()
    assert kept_copy(app, second).read_bytes() == (drop / "archive" / "b.csv").read_bytes()
    assert files(drop / "archive") == {"a.csv", "b.csv", "c.csv", "c.csv.error.json"}
    report = json.loads((drop / "archive" / "c.csv.error.json").read_text(encoding="utf-8"))
    assert (report["file"], report["outcome"], report["duplicate_of"]) == ("c.csv", "duplicate", first)
    assert [(w["warning"], w["duplicate_of"], w["in_force"]) for w in report["warnings"]] == [
        ("duplicate_of_older", first, second)
    ]
    assert files(tmp_path / "var" / "staging" / P / "in") == set()  # the staged copies go; the kept ones stay
    assert first is not None
    assert app.ingestor.reapply(P, first).reapply_of == first
    assert stock(app, P, "W1") == 10
