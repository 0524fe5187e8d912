"""Acknowledgement files taken by inbound sources: a local drop folder and a real SFTP server (sshd on 127.0.0.1).

A source of `kind = "acknowledgements"` takes status-only files like any other kind: applied once, archived
(with a report beside it when rows were refused), or moved to failed/ with NAME.error.json when refused whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.settings import FolderSource, SftpSource
from tests.conftest import FIXTURES, AppFactory, FakeClock
from tests.integration.conftest import Remote
from tests.integration.helpers import ats, contents, messages, status_of
from tests.integration.test_folder_source import P, World, files, ledger, no_wait, put

SKU = "3700000000011"
SOURCE = {"name": "acks-in", "kind": "acknowledgements", "path": "acks"}


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock) -> Iterator[World]:
    built = World(tmp_path, clock)
    yield built
    built.close()


def test_a_folder_source_of_acknowledgements_closes_orders_and_archives_the_file(world: World) -> None:
    """The good fixture dropped into the folder: both orders closed (simple mode: their units leave stock), the
    file archived, one ledger entry of kind acknowledgements from the source."""
    world.configure({}, SOURCE)
    app = world.app(wait=no_wait)
    source = app.settings.partner(P).source("acks-in")
    assert isinstance(source, FolderSource)
    assert source.kind == "acknowledgements"
    app.commands.set_stock(P, SKU, 10, None)
    app.commands.place(P, "O-1001", [RequestedLine(SKU, 2)])
    app.commands.place(P, "O-1002", [RequestedLine(SKU, 3)])
    folder = world.root / "acks"
    put(folder, "closing.csv", (FIXTURES / "acknowledgements" / "good.csv").read_bytes())

    [picked] = app.pickup.poll(P, source)
    assert (picked.file, picked.outcome, picked.ok) == ("closing.csv", "applied", True)
    assert (status_of(app, "O-1001"), status_of(app, "O-1002")) == (OrderStatus.CLOSED, OrderStatus.CLOSED)
    assert ats(app, P, SKU) == 5  # simple, pending allocation on: 10 - 2 - 3 taken from stock on leaving pending
    assert sorted(messages(app, P, "order_closed")) == ["O-1001", "O-1002"]
    assert files(folder) == set()
    assert files(folder / "archive") == {"closing.csv"}
    [entry] = ledger(app)
    assert (entry.kind, entry.source, entry.outcome, entry.rows_applied) == (
        "acknowledgements",
        "acks-in:closing.csv",
        "applied",
        2,
    )


def test_an_unknown_order_is_refused_and_reported_beside_the_archived_file(world: World) -> None:
    """Rows the rules refuse: the file is archived with NAME.error.json listing them by line."""
    world.configure({}, SOURCE)
    app = world.app(wait=no_wait)
    app.commands.set_stock(P, SKU, 10, None)
    app.commands.place(P, "REAL-1", [RequestedLine(SKU, 2)])
    folder = world.root / "acks"
    put(folder, "acks.csv", b"order_id,status\nREAL-l,closed\nREAL-1,closed\n")

    [picked] = app.pickup.poll(P, app.settings.partner(P).source("acks-in"))
    assert (picked.outcome, picked.refused, picked.ok) == ("applied", 1, False)
    assert (status_of(app, "REAL-l"), status_of(app, "REAL-1")) == (None, OrderStatus.CLOSED)
    assert files(folder / "archive") == {"acks.csv", "acks.csv.error.json"}
    report = json.loads((folder / "archive" / "acks.csv.error.json").read_text(encoding="utf-8"))
    assert report["refused"] == [
        {"line": 2, "column": None, "message": "order REAL-l is unknown", "reason": "unknown_order"}
    ]


def test_an_order_given_twice_sends_the_file_to_failed_naming_both_lines(world: World) -> None:
    """Refused whole: nothing applied, failed/NAME and its report, the problem naming the first line too."""
    world.configure({}, SOURCE)
    app = world.app(wait=no_wait)
    app.commands.set_stock(P, SKU, 10, None)
    app.commands.place(P, "O-1", [RequestedLine(SKU, 2)])
    before = contents(app)
    folder = world.root / "acks"
    put(folder, "twice.csv", b"order_id,status\nO-1,closed\nO-1,cancelled\n")

    [picked] = app.pickup.poll(P, app.settings.partner(P).source("acks-in"))
    assert (picked.outcome, picked.ok) == ("rejected", False)
    assert contents(app) == before
    assert files(folder / "failed") == {"twice.csv", "twice.csv.error.json"}
    report = json.loads((folder / "failed" / "twice.csv.error.json").read_text(encoding="utf-8"))
    assert report["problems"] == [
        {
            "line": 3,
            "column": "order_id",
            "message": "order O-1 is acknowledged again (first at line 2): one row per order",
        }
    ]


@pytest.mark.slow
def test_an_sftp_source_of_acknowledgements_takes_the_file_and_closes_the_orders(
    sshd: Remote, make_app: AppFactory
) -> None:
    """The same over SFTP: downloaded, applied once, archived on the server; the bad fixture goes to failed/."""
    app = make_app(p={"stock_mode": "advanced", "sources": [sshd.source(kind="acknowledgements")]})
    [source] = app.settings.partner("p").sources
    assert isinstance(source, SftpSource)
    app.commands.set_stock("p", SKU, 10, None)
    app.commands.place("p", "O-1001", [RequestedLine(SKU, 2)])
    app.commands.place("p", "O-1002", [RequestedLine(SKU, 3)])
    assert ats(app, "p", SKU) == 5
    sshd.put("good.csv", (FIXTURES / "acknowledgements" / "good.csv").read_bytes())
    sshd.put("bad.csv", (FIXTURES / "acknowledgements" / "bad_rows.csv").read_bytes())

    picked = app.pickup.poll("p", source)
    assert sorted((item.file, item.outcome) for item in picked) == [("bad.csv", "rejected"), ("good.csv", "applied")]
    assert ats(app, "p", SKU) == 10  # advanced: closed lines allocate nothing
    assert sshd.names("archive") == ["good.csv"]
    assert sshd.names("failed") == ["bad.csv", "bad.csv.error.json"]
    report = json.loads((sshd.path / "failed" / "bad.csv.error.json").read_text(encoding="utf-8"))
    assert [(p["line"], p["column"]) for p in report["problems"]] == [(3, "status"), (4, "order_id"), (5, "updated_at")]
