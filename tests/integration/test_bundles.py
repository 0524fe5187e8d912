"""Bundles through ingest on a real store: several files of one partner in one transaction, in order, all or
nothing, with only the ATS values that differ after the whole bundle queued (the seed's advanced mode: the stock
level updated and the orders closed together)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gateway import bootstrap
from gateway.domain.orders import RequestedLine
from gateway.domain.outcomes import Outcome
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service.bundles import BundleResult, Bundles, bundle_digest
from gateway.store.records import LedgerRecord
from tests.conftest import FIXTURES, AppFactory, at
from tests.integration.helpers import ats, contents, messages, stock

pytestmark = pytest.mark.both_stores

S = OrderStatus
SKU, OTHER = "3700000000011", "3700000000028"
T0, T1 = "2019-06-25T12:00:00Z", "2019-06-26T12:00:00Z"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def manifest(folder: Path, *members: tuple[str, str], name: str = "day.bundle.csv") -> Path:
    return write(folder, name, "kind,file\n" + "".join(f"{kind},{file}\n" for kind, file in members))


def ingest(app: bootstrap.App, path: Path, **options: object) -> BundleResult:
    return Bundles(app.ingestor).ingest_manifest("p", path, **options)  # type: ignore[arg-type]


def ledger(app: bootstrap.App) -> list[LedgerRecord]:
    """The partner's ledger, oldest first."""
    with app.store.read() as tx:
        return list(reversed(tx.ledger.entries(tx.partners.id_of("p"))))


def ats_messages(app: bootstrap.App) -> list[tuple[int, str, int | None, int | None, str]]:
    """Every ATS message of partner p (any state): (id, SKU, value, ledger entry, state)."""
    with app.store.read() as tx:
        rows = tx.outbox.rows(tx.partners.id_of("p"), state=None)
    return [(m.id, m.key, m.value, m.ledger_id, m.state) for m in rows if m.kind == "ats"]


def invoiced(make_app: AppFactory, mode: str = "advanced") -> bootstrap.App:
    """Partner p: SKU at 10 and OTHER at 4 as of T0, an order of 5 SKU in invoicing (ATS 5 in advanced)."""
    app = make_app(p={"stock_mode": mode})
    app.commands.set_stock("p", SKU, 10, at(T0))
    app.commands.set_stock("p", OTHER, 4, at(T0))
    app.commands.place("p", "O-1", [RequestedLine(SKU, 5)])
    app.commands.set_status("p", "O-1", S.INVOICING)
    return app


@pytest.mark.parametrize("order", ["stock_first", "closings_first"])
def test_stock_and_closings_together_queue_the_final_ats_only(make_app: AppFactory, tmp_path: Path, order: str) -> None:
    """Advanced: 5 shipped of 10, the stock set to 5 and the order closed in one bundle. Alone, either file would
    publish 0 (stock first) or 10 (closings first) for a moment; together SKU stays 5 and nothing is queued for
    it, while OTHER (restocked 4 -> 7) is queued once with its final value, under the bundle's ledger entry."""
    app = invoiced(make_app)
    assert ats(app, "p", SKU) == 5
    before = ats_messages(app)
    write(tmp_path, "stock.csv", f"sku,quantity,as_of\n{SKU},5,{T1}\n{OTHER},7,{T1}\n")
    write(tmp_path, "acks.csv", "order_id,status\nO-1,closed\n")
    members = [("stock", "stock.csv"), ("acknowledgements", "acks.csv")]
    result = ingest(app, manifest(tmp_path, *(members if order == "stock_first" else members[::-1])))

    assert (result.outcome, result.counts.applied, result.counts.refused) == (Outcome.APPLIED, 3, 0)
    assert (ats(app, "p", SKU), stock(app, "p", SKU), ats(app, "p", OTHER)) == (5, 5, 7)
    assert [(c.sku, c.before, c.after) for c in result.changes] == [(OTHER, 4, 7)]
    assert result.ats_changes == 1
    after = ats_messages(app)
    new = [row for row in after if row not in before]
    assert [(sku, value, ledger_id) for _, sku, value, ledger_id, _ in new] == [(OTHER, 7, result.ledger_id)]
    assert {row[1]: row[2] for row in after if row[4] == "pending"} == {SKU: 5, OTHER: 7}
    assert not [row for row in after if row[1] == SKU and row[3] == result.ledger_id]
    assert messages(app, "p", "order_closed") == ["O-1"]


def test_a_sku_moved_there_and_back_within_the_bundle_queues_nothing(make_app: AppFactory, tmp_path: Path) -> None:
    """10 -> 5 -> 10 inside one bundle: the outbox is left exactly as it was."""
    app = invoiced(make_app)
    before = contents(app)
    write(tmp_path, "down.csv", f"sku,quantity,as_of\n{OTHER},1,{T1}\n")
    write(tmp_path, "up.csv", f"sku,quantity,as_of\n{OTHER},4,{T1}\n")
    result = ingest(app, manifest(tmp_path, ("stock", "down.csv"), ("stock", "up.csv")))
    assert (result.outcome, result.changes, result.ats_changes) == (Outcome.APPLIED, [], 0)
    after = contents(app)
    assert after["outbox"] == before["outbox"]
    assert ats(app, "p", OTHER) == 4


def test_the_good_fixture_after_the_orders_moves_only_the_restocked_sku(make_app: AppFactory) -> None:
    """fixtures/bundles/good: both orders shipped and closed, 3700000000035 restocked: one ATS queued (6)."""
    app = make_app(p={"stock_mode": "advanced"})
    app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv")
    app.ingestor.ingest("p", Kind.ORDERS, FIXTURES / "orders" / "good.csv")
    result = ingest(app, FIXTURES / "bundles" / "good" / "close-day.bundle.csv")
    assert (result.outcome, result.counts.applied) == (Outcome.APPLIED, 5)
    assert (ats(app, "p", SKU), ats(app, "p", OTHER), ats(app, "p", "3700000000035")) == (5, 3, 6)
    new = [(sku, value) for _, sku, value, ledger_id, _ in ats_messages(app) if ledger_id == result.ledger_id]
    assert new == [("3700000000035", 6)]
    assert sorted(messages(app, "p", "order_closed")) == ["O-1001", "O-1002"]


def test_the_ledger_has_one_entry_per_member_and_one_for_the_bundle(make_app: AppFactory, tmp_path: Path) -> None:
    """The bundle's entry (kind bundle, its digest over the members' kinds and digests, their rows together) and
    one `bundled` entry per member with its own kind, digest and counts, its report naming the bundle."""
    app = invoiced(make_app)
    stock_file = write(tmp_path, "stock.csv", f"sku,quantity,as_of\n{SKU},5,{T1}\n")
    acks = write(tmp_path, "acks.csv", "order_id,status\nO-1,closed\nNOPE,closed\n")
    result = ingest(app, manifest(tmp_path, ("stock", "stock.csv"), ("acknowledgements", "acks.csv")))
    digests = [hashlib.sha256(path.read_bytes()).hexdigest() for path in (stock_file, acks)]

    entries = [e for e in ledger(app) if e.kind in ("bundle", "stock", "acknowledgements")]
    assert [(e.kind, e.outcome, e.rows_applied, e.rows_refused) for e in entries] == [
        ("bundle", "applied", 2, 1),
        ("stock", "bundled", 1, 0),
        ("acknowledgements", "bundled", 1, 1),
    ]
    bundle, stock_entry, acks_entry = entries
    assert bundle.id == result.ledger_id
    assert bundle.sha256 == bundle_digest([("stock", digests[0]), ("acknowledgements", digests[1])]) == result.sha256
    assert (stock_entry.sha256, acks_entry.sha256) == tuple(digests)
    assert [json.loads(e.report or "{}")["bundle_id"] for e in (stock_entry, acks_entry)] == [bundle.id] * 2
    report = json.loads(bundle.report or "{}")
    assert [m["ledger_id"] for m in report["members"]] == [stock_entry.id, acks_entry.id]
    # a row the rules refuse stays refused alone, as in a lone file
    assert [(p.line, p.message) for p in result.members[1].refusals] == [(3, "order NOPE is unknown")]
    # the order's history names the member that closed it; the closed order's message too
    with app.store.read() as tx:
        partner_id = tx.partners.id_of("p")
        last = tx.orders.history(partner_id, "O-1")[-1]
        closed = [m for m in tx.outbox.rows(partner_id, state=None) if m.kind == "order_closed"]
    assert (last.status, last.ledger_id, last.source) == (S.CLOSED, acks_entry.id, str(acks))
    assert [m.ledger_id for m in closed] == [acks_entry.id]


def test_a_malformed_member_rejects_the_whole_bundle_and_every_problem_is_reported(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """A good stock file and a malformed acknowledgements file: nothing applies (the stock file neither); the
    bundle's entry and each member's are `rejected`, each malformed member with its problems and lines."""
    app = invoiced(make_app)
    before = contents(app)
    write(tmp_path, "stock.csv", f"sku,quantity,as_of\n{SKU},5,{T1}\n{OTHER},lots,{T1}\n")
    write(tmp_path, "good.csv", f"sku,quantity,as_of\n{OTHER},9,{T1}\n")
    write(tmp_path, "acks.csv", "order_id,status\nO-1,shipped\n")
    listed = (("stock", "stock.csv"), ("stock", "good.csv"), ("acknowledgements", "acks.csv"))
    result = ingest(app, manifest(tmp_path, *listed))

    assert result.outcome == Outcome.REJECTED
    assert contents(app) == before
    assert [(p.line, p.column) for p in result.problems] == [(2, "file"), (4, "file")]
    assert "stock.csv (stock) is refused whole: line 3, column quantity" in result.problems[0].message
    assert [(m.outcome, [(p.line, p.column) for p in m.problems]) for m in result.members] == [
        ("rejected", [(3, "quantity")]),
        ("rejected", [(None, None)]),
        ("rejected", [(2, "status")]),
    ]
    assert result.members[1].reason == "bundle_rejected"
    entries = ledger(app)[-4:]
    assert [(e.kind, e.outcome) for e in entries] == [
        ("bundle", "rejected"),
        ("stock", "rejected"),
        ("stock", "rejected"),
        ("acknowledgements", "rejected"),
    ]
    report = json.loads(entries[0].report or "{}")
    assert [[p["line"] for p in m["problems"]] for m in report["members"]] == [[3], [None], [2]]
    assert all(json.loads(e.report or "{}")["bundle_id"] == entries[0].id for e in entries[1:])


def test_the_same_bundle_again_is_a_duplicate_whatever_the_manifest_is_called(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """The same members in the same order are a duplicate (nothing applied again, one `duplicate` entry); in
    another order they are another bundle."""
    app = invoiced(make_app)
    write(tmp_path, "stock.csv", f"sku,quantity,as_of\n{OTHER},7,{T1}\n")
    write(tmp_path, "acks.csv", "order_id,status\nO-1,closed\n")
    first = ingest(app, manifest(tmp_path, ("stock", "stock.csv"), ("acknowledgements", "acks.csv")))
    after_first = contents(app)
    again = ingest(
        app, manifest(tmp_path, ("stock", "stock.csv"), ("acknowledgements", "acks.csv"), name="again.bundle.csv")
    )
    assert (again.outcome, again.duplicate_of, again.ats_changes) == (Outcome.DUPLICATE, first.ledger_id, 0)
    assert contents(app) == after_first
    assert [(e.kind, e.outcome) for e in ledger(app)[-1:]] == [("bundle", "duplicate")]
    reordered = ingest(
        app, manifest(tmp_path, ("acknowledgements", "acks.csv"), ("stock", "stock.csv"), name="other.bundle.csv")
    )
    assert reordered.outcome == Outcome.APPLIED  # a new bundle; its rows change nothing now


def test_a_member_and_a_lone_file_of_the_same_content(make_app: AppFactory, tmp_path: Path) -> None:
    """A member equal to a file applied alone applies with its bundle (the bundle is the unit checked); a lone
    file equal to a member applied in a bundle is a duplicate of that member's entry."""
    app = invoiced(make_app)
    lone = write(tmp_path, "lone.csv", f"sku,quantity,as_of\n{OTHER},7,{T1}\n")
    assert app.ingestor.ingest("p", Kind.STOCK, lone).outcome == Outcome.APPLIED
    write(tmp_path, "acks.csv", "order_id,status\nO-1,closed\n")
    bundled = ingest(app, manifest(tmp_path, ("stock", "lone.csv"), ("acknowledgements", "acks.csv")))
    assert (bundled.outcome, [m.outcome for m in bundled.members]) == (Outcome.APPLIED, ["applied", "applied"])
    again = app.ingestor.ingest("p", Kind.ACKNOWLEDGEMENTS, tmp_path / "acks.csv")
    assert (again.outcome, again.duplicate_of) == (Outcome.DUPLICATE, bundled.members[1].ledger_id)


def test_a_lone_file_older_than_a_member_in_force_is_a_duplicate_of_older(make_app: AppFactory, tmp_path: Path) -> None:
    """OTHER=7 alone, then OTHER=5 in a bundle, then the OTHER=7 file again: a duplicate of the first, reported as
    older than the member now in force; the level stays 5."""
    app = invoiced(make_app)
    lone = write(tmp_path, "seven.csv", f"sku,quantity\n{OTHER},7\n")
    first = app.ingestor.ingest("p", Kind.STOCK, lone)
    write(tmp_path, "five.csv", f"sku,quantity\n{OTHER},5\n")
    bundled = ingest(app, manifest(tmp_path, ("stock", "five.csv")))
    again = app.ingestor.ingest("p", Kind.STOCK, lone)
    assert (again.outcome, again.duplicate_of, again.in_force) == (
        Outcome.DUPLICATE,
        first.ledger_id,
        bundled.members[0].ledger_id,
    )
    assert [w.code for w in again.warnings] == ["duplicate_of_older"]
    assert stock(app, "p", OTHER) == 5


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("stock,../outside.csv", "leaves the manifest's folder (..)"),
        ("stock,/etc/passwd", "is absolute"),
        ("stock,missing.csv", "missing.csv does not exist"),
        ("bundle,inner.bundle.csv", "a bundle may not contain another bundle"),
        ("invoices,stock.csv", "unknown kind 'invoices'"),
        ("stock,sub", "sub is not a file"),
        ("stock,day.bundle.csv", "is the manifest itself"),
        ("stock,stock.csv\nstock,./stock.csv", "stock.csv is listed again (first at line 2)"),
    ],
)
def test_a_manifest_naming_a_bad_member_is_rejected_with_its_line(
    make_app: AppFactory, tmp_path: Path, line: str, expected: str
) -> None:
    """A missing file, a path out of the folder, an unknown kind or a bundle inside: rejected, nothing applied,
    the problem at its manifest line, a `rejected` bundle entry."""
    app = invoiced(make_app)
    (tmp_path / "sub").mkdir()
    write(tmp_path, "stock.csv", f"sku,quantity,as_of\n{OTHER},7,{T1}\n")
    before = contents(app)
    result = ingest(app, write(tmp_path, "day.bundle.csv", f"kind,file\n{line}\n"))
    assert result.outcome == Outcome.REJECTED
    assert any(expected in p.message and p.line is not None for p in result.problems), result.problems
    assert contents(app) == before
    assert (ledger(app)[-1].kind, ledger(app)[-1].outcome) == ("bundle", "rejected")


def test_the_bad_fixtures_are_rejected(make_app: AppFactory) -> None:
    """fixtures/bundles/bad: a member with an unknown status refuses the bundle; the bad manifest lists three
    problems, each at its line."""
    app = make_app(p={"stock_mode": "advanced"})
    app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv")
    app.ingestor.ingest("p", Kind.ORDERS, FIXTURES / "orders" / "good.csv")
    before = contents(app)
    bad = ingest(app, FIXTURES / "bundles" / "bad" / "close-day.bundle.csv")
    assert (bad.outcome, [m.outcome for m in bad.members]) == (Outcome.REJECTED, ["rejected", "rejected"])
    assert [(p.line, p.column) for p in bad.members[1].problems] == [(2, "status")]
    manifest_problems = ingest(app, FIXTURES / "bundles" / "bad" / "bad_manifest.bundle.csv").problems
    assert [(p.line, p.column) for p in manifest_problems] == [(2, "file"), (3, "kind"), (4, "kind")]
    assert contents(app) == before


def test_a_dry_run_shows_the_final_changes_and_writes_nothing(make_app: AppFactory, tmp_path: Path) -> None:
    """--dry-run of a bundle: the changes over the whole bundle, rolled back, no ledger entry."""
    app = invoiced(make_app)
    before = contents(app, skip=())
    write(tmp_path, "stock.csv", f"sku,quantity,as_of\n{SKU},5,{T1}\n{OTHER},7,{T1}\n")
    write(tmp_path, "acks.csv", "order_id,status\nO-1,closed\n")
    result = ingest(app, manifest(tmp_path, ("stock", "stock.csv"), ("acknowledgements", "acks.csv")), dry_run=True)
    assert (result.outcome, result.dry_run) == (Outcome.APPLIED, True)
    assert [(c.sku, c.before, c.after) for c in result.changes] == [(OTHER, 4, 7)]
    assert contents(app, skip=()) == before


def test_channel_values_are_held_back_too(make_app: AppFactory, tmp_path: Path) -> None:
    """A capped channel of SKU: its value moves 5 -> 0 -> 5 inside the bundle and nothing is queued for it."""
    app = invoiced(make_app)
    app.commands.set_cap("p", SKU, "paris", "c1", 8)
    with app.store.read() as tx:
        channel_rows = [m for m in tx.outbox.rows(tx.partners.id_of("p"), state=None) if m.kind == "channel_ats"]
    write(tmp_path, "stock.csv", f"sku,quantity,as_of\n{SKU},5,{T1}\n")
    write(tmp_path, "acks.csv", "order_id,status\nO-1,closed\n")
    result = ingest(app, manifest(tmp_path, ("stock", "stock.csv"), ("acknowledgements", "acks.csv")))
    assert result.outcome == Outcome.APPLIED
    with app.store.read() as tx:
        after = [m for m in tx.outbox.rows(tx.partners.id_of("p"), state=None) if m.kind == "channel_ats"]
    assert after == channel_rows
