"""Order exports by file: orders reaching invoicing, written as CSV into a local folder or a real SFTP folder.

The whole stack runs (bootstrap.build, Commands, Publisher.deliver) on real SQLite; the SFTP tests speak to the
session's real OpenSSH sshd, checking its host key against known_hosts.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.bootstrap import App
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.export import EXPORT_COLUMNS, export_csv
from gateway.service.publish import export_name
from gateway.store.port import OutboxRecord
from tests.conftest import AppFactory, FakeClock, at
from tests.integration.conftest import Remote
from tests.support.partner import FakePartner

pytestmark = pytest.mark.both_stores

HEADER = ["order_id", "status", "updated_at", "sku", "quantity", "confirmed_quantity", "assembly", "collection"]
FAST = {"retries": 1, "backoff_initial": 0.01, "backoff_max": 0.05}
# identifiers a spreadsheet would read as formulas; each passes the identifier rules of order files
# (not empty, at most 128 characters, printable: no tab or carriage return)
HOSTILE_SKU = '=HYPERLINK("http://evil.example/x","click me")'


def export_app(make_app: AppFactory, export: dict[str, Any], **options: Any) -> App:
    return make_app(p={"stock_mode": "simple", "export": export, "delivery": FAST} | options)


def folder_export(path: Path, **options: Any) -> dict[str, Any]:
    return {"type": "folder", "path": str(path)} | options


def stocked(app: App, *skus: str, quantity: int = 100) -> None:
    for sku in skus:
        app.commands.set_stock("p", sku, quantity, None)


def invoiced(app: App, order_id: str, *lines: RequestedLine) -> None:
    """Place the order and move it to invoicing: that queues its order_export message."""
    app.commands.place("p", order_id, list(lines))
    app.commands.set_status("p", order_id, OrderStatus.INVOICING)


def exports(app: App, state: str | None = None) -> list[OutboxRecord]:
    with app.store.read() as tx:
        return tx.outbox.rows(tx.partners.id_of("p"), state=state, kind="order_export")


def files(folder: Path) -> list[str]:
    """Every name in the folder, hidden ones included."""
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def rows(data: bytes, delimiter: str = ",") -> list[list[str]]:
    """The CSV parsed back, header included."""
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=delimiter))


def only_file(folder: Path) -> Path:
    names = files(folder)
    assert len(names) == 1, names
    assert names[0].endswith(".csv"), names
    assert not names[0].startswith("."), names
    return folder / names[0]


# local folder


def test_an_order_reaching_invoicing_is_written_as_csv_into_the_export_folder(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    out = tmp_path / "exports"
    app = export_app(make_app, folder_export(out))
    stocked(app, "A1", "B2")
    app.commands.place(
        "p", "O1", [RequestedLine("A1", 3), RequestedLine("B2", 2, assembly="paris-11", collection="2026-12-01")]
    )
    app.commands.confirm("p", "O1", "A1", 2, clock())
    clock.advance(60)
    app.commands.set_status("p", "O1", OrderStatus.INVOICING)
    [message] = exports(app, "pending")

    report = app.publisher.deliver("p")

    assert (report.ok, report.delivered, report.batches) == (True, 1, 1), report
    written = only_file(out)
    with app.store.read() as tx:
        claimed = tx.outbox.rows(tx.partners.id_of("p"), state=None, kind="order_export")
    assert written.name == f"orders-p-20260101T000100Z-{claimed[0].batch_id}.csv"  # stamped when queued
    data = written.read_bytes()
    lines = data.decode("utf-8").split("\r\n")
    assert (lines[0], len(lines), lines[-1]) == (",".join(HEADER), 4, "")  # a header, one row per line, CRLF
    assert list(EXPORT_COLUMNS) == HEADER
    assert rows(data) == [
        HEADER,
        ["O1", "invoicing", "2026-01-01T00:01:00Z", "A1", "3", "2", "", ""],
        ["O1", "invoicing", "2026-01-01T00:01:00Z", "B2", "2", "", "paris-11", "2026-12-01"],
    ]
    assert data == export_csv([message.payload or "{}"])
    [delivered] = exports(app, "delivered")
    assert (delivered.id, delivered.attempts, delivered.last_error) == (message.id, 1, None)
    assert exports(app, "pending") == []
    # nothing more to send: a second pass writes nothing
    assert app.publisher.deliver("p").delivered == 0
    assert files(out) == [written.name]


def test_identifiers_a_spreadsheet_would_run_are_written_with_a_leading_quote(
    make_app: AppFactory, tmp_path: Path
) -> None:
    out = tmp_path / "exports"
    app = export_app(make_app, folder_export(out))
    skus = [HOSTILE_SKU, "+SKU-PLUS", "-SKU-MINUS", "@SUM(A1:A9)", "SKU=1"]
    stocked(app, *skus)
    invoiced(app, "=1+1", RequestedLine(HOSTILE_SKU, 1), RequestedLine("SKU=1", 1))
    invoiced(app, "+O2", RequestedLine("+SKU-PLUS", 1))
    invoiced(app, "-O3", RequestedLine("-SKU-MINUS", 1, assembly="@hub", collection="-2026-12-01"))
    invoiced(app, "@O4", RequestedLine("@SUM(A1:A9)", 1))

    assert app.publisher.deliver("p").delivered == 4

    data = only_file(out).read_bytes()
    parsed = rows(data)
    assert parsed[0] == HEADER
    cells = {(row[0], row[3], row[6], row[7]) for row in parsed[1:]}
    assert cells == {
        ("'=1+1", "'" + HOSTILE_SKU, "", ""),
        ("'=1+1", "SKU=1", "", ""),  # `=` not in first place: left as it is
        ("'+O2", "'+SKU-PLUS", "", ""),
        ("'-O3", "'-SKU-MINUS", "'@hub", "'-2026-12-01"),
        ("'@O4", "'@SUM(A1:A9)", "", ""),
    }
    assert len(data.decode("utf-8").split("\r\n")) == 1 + 5 + 1  # the quoted commas did not split a row
    for row in parsed[1:]:  # every cell of a data row is safe to open
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_the_configured_delimiter_is_honoured(make_app: AppFactory, tmp_path: Path, delimiter: str) -> None:
    out = tmp_path / "exports"
    app = export_app(make_app, folder_export(out, delimiter=delimiter))
    stocked(app, "A;1")
    invoiced(app, "O1", RequestedLine("A;1", 4))

    assert app.publisher.deliver("p").ok

    data = only_file(out).read_bytes()
    assert data.decode("utf-8").startswith(delimiter.join(HEADER) + "\r\n")
    assert rows(data, delimiter) == [HEADER, ["O1", "invoicing", "2026-01-01T00:00:00Z", "A;1", "4", "", "", ""]]


def test_a_re_sent_batch_replaces_its_own_file_under_the_same_name(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """Written, then not settled (the process died): after the lease, the same batch id writes the same file."""
    out = tmp_path / "exports"
    app = export_app(make_app, folder_export(out))
    stocked(app, "A1", "B2")
    invoiced(app, "O1", RequestedLine("A1", 1))
    invoiced(app, "O2", RequestedLine("B2", 2))
    lease = app.settings.partner("p").delivery.lease_seconds
    with app.store.write() as tx:
        claim = tx.outbox.claim(
            tx.partners.id_of("p"), "order_export", clock(), 500, clock() + int(lease * 1e6), "batch-1"
        )
    assert claim is not None
    assert len(claim.messages) == 2
    app.publisher.senders("p")["order_export"].send(claim)
    name = export_name("p", claim)
    assert files(out) == [name]
    first = (out / name).read_bytes()
    (out / name).write_bytes(first[: len(first) // 2])  # the partner saw a cut file, say: it must be replaced

    assert app.publisher.deliver("p").delivered == 0  # still leased: nothing is sent twice meanwhile
    clock.advance(lease + 1)
    report = app.publisher.deliver("p")

    assert (report.ok, report.delivered, report.batches) == (True, 2, 1), report
    assert files(out) == [name]  # the same name: no second file, no .part left
    assert (out / name).read_bytes() == first
    assert [(m.state, m.batch_id) for m in exports(app, None)] == [("delivered", "batch-1")] * 2


def test_a_folder_that_cannot_be_written_fails_the_batch_and_the_message_stays_pending(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the export folder's parent should be")
    out = blocker / "exports"
    app = export_app(make_app, folder_export(out))
    stocked(app, "A1")
    invoiced(app, "O1", RequestedLine("A1", 1))

    report = app.publisher.deliver("p")

    assert (report.ok, report.delivered, report.batches, report.failed_batches, report.dead) == (
        False,
        0,
        0,
        1,
        0,
    ), report
    assert "failed and are due again later" in report.summary()
    assert len(report.errors) == 1
    assert "cannot write orders-p-" in report.errors[0]
    [message] = exports(app, "pending")
    assert message.attempts == 1
    assert message.last_error is not None
    assert "cannot write" in message.last_error
    assert message.last_status is None
    assert message.next_attempt_at is not None
    assert message.next_attempt_at > clock()
    assert exports(app, "delivered") == []
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []

    # the folder is fixed: the message goes at its next attempt, under its batch's name
    blocker.unlink()
    clock.advance(60)
    report = app.publisher.deliver("p")
    assert (report.ok, report.delivered) == (True, 1), report
    [delivered] = exports(app, None)
    assert delivered.state == "delivered"
    assert only_file(out).name == f"orders-p-20260101T000000Z-{delivered.batch_id}.csv"


def test_order_exports_go_to_the_file_while_other_kinds_still_go_to_the_api(
    make_app: AppFactory, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("partner-token\n")
    out = tmp_path / "exports"
    with FakePartner() as partner:
        app = export_app(
            make_app,
            folder_export(out),
            api={"base_url": partner.url, "token_file": str(token), "connect_timeout": 2.0, "read_timeout": 5.0},
        )
        stocked(app, "A1", quantity=10)
        invoiced(app, "O1", RequestedLine("A1", 4))
        app.commands.set_status("p", "O1", OrderStatus.CLOSED)

        report = app.publisher.deliver("p")

        assert report.ok, report
        assert partner.items("order_export") == []
        assert [item["order_id"] for item in partner.items("order_closed")] == ["O1"]
        assert partner.ats_view() == {"A1": 6}
    assert rows(only_file(out).read_bytes())[1][:5] == ["O1", "invoicing", "2026-01-01T00:00:00Z", "A1", "4"]
    with app.store.read() as tx:
        states = {(m.kind, m.state) for m in tx.outbox.rows(tx.partners.id_of("p"), state=None)}
    assert states == {("ats", "delivered"), ("order_export", "delivered"), ("order_closed", "delivered")}


# a real SFTP folder


def sftp_export(remote: Remote, **options: Any) -> dict[str, Any]:
    source = remote.source(**options)
    del source["kind"]
    return source


@pytest.mark.slow
def test_the_export_arrives_complete_under_its_final_name_on_a_real_sftp_server(
    sshd: Remote, make_app: AppFactory
) -> None:
    app = export_app(make_app, sftp_export(sshd, delimiter=";"))
    stocked(app, "A1", "@B2")
    invoiced(app, "O1", RequestedLine("A1", 3), RequestedLine("@B2", 1))
    [message] = exports(app, "pending")

    report = app.publisher.deliver("p")

    assert (report.ok, report.delivered, report.batches) == (True, 1, 1), report
    [delivered] = exports(app, "delivered")
    name = f"orders-p-20260101T000000Z-{delivered.batch_id}.csv"
    assert sshd.names() == [name]  # no hidden .part left beside it
    data = (sshd.path / name).read_bytes()
    assert data == export_csv([message.payload or "{}"], ";")
    assert rows(data, ";") == [
        HEADER,
        ["O1", "invoicing", "2026-01-01T00:00:00Z", "'@B2", "1", "", "", ""],
        ["O1", "invoicing", "2026-01-01T00:00:00Z", "A1", "3", "", "", ""],
    ]


@pytest.mark.slow
def test_a_re_sent_batch_replaces_its_file_on_the_sftp_server(
    sshd: Remote, make_app: AppFactory, clock: FakeClock
) -> None:
    app = export_app(make_app, sftp_export(sshd))
    stocked(app, "A1")
    invoiced(app, "O1", RequestedLine("A1", 3))
    with app.store.write() as tx:
        claim = tx.outbox.claim(tx.partners.id_of("p"), "order_export", clock(), 500, clock() + 1_000_000, "batch-sftp")
    assert claim is not None
    app.publisher.senders("p")["order_export"].send(claim)
    name = export_name("p", claim)
    first = (sshd.path / name).read_bytes()
    sshd.put(name, b"cut")
    clock.advance(2)

    assert app.publisher.deliver("p").delivered == 1

    assert sshd.names() == [name]
    assert (sshd.path / name).read_bytes() == first


@pytest.mark.slow
def test_an_sftp_server_whose_host_key_is_not_known_gets_nothing(
    sshd: Remote, make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    wrong = sshd.server.other_known_hosts(tmp_path / "wrong_known_hosts")
    app = export_app(make_app, sftp_export(sshd, known_hosts=str(wrong)))
    stocked(app, "A1")
    invoiced(app, "O1", RequestedLine("A1", 1))

    report = app.publisher.deliver("p")

    assert (report.ok, report.failed_batches, report.delivered) == (False, 1, 0), report
    [message] = exports(app, "pending")
    assert message.last_error is not None
    assert "host key that differs" in message.last_error
    assert sshd.names() == []


def test_export_payloads_are_the_engine_bodies(make_app: AppFactory, tmp_path: Path) -> None:
    """The queued body carries what the file needs, so a later schema change of orders cannot change an export."""
    app = export_app(make_app, folder_export(tmp_path / "exports"))
    stocked(app, "A1")
    invoiced(app, "O1", RequestedLine("A1", 2))
    [message] = exports(app, "pending")
    assert json.loads(message.payload or "{}") == {
        "order_id": "O1",
        "status": "invoicing",
        "updated_at": "2026-01-01T00:00:00Z",
        "lines": [{"sku": "A1", "quantity": 2, "confirmed_quantity": None, "assembly": None, "collection": None}],
    }
    assert message.created_at == at("2026-01-01T00:00:00Z")
