"""Bundles taken by inbound sources: a local drop folder and a real SFTP server (sshd on 127.0.0.1).

A source of `kind = "bundle"` takes manifests (`*.bundle.csv` unless its pattern says otherwise): a complete
manifest is staged with the members it names, applied as one bundle, and only after the commit moved aside with
them (archive/, or failed/ with each one's report beside it). Members are never taken on their own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import bootstrap, settings
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service.pickup import Pickup
from gateway.settings import FolderSource, SftpSource
from tests.conftest import FIXTURES, AppFactory, FakeClock, at, write_config
from tests.integration.conftest import Remote
from tests.integration.helpers import ats, contents, messages, status_of
from tests.integration.test_folder_source import CRASHING_CHILD, P, clean_env, files, ledger, no_wait, put

GOOD = FIXTURES / "bundles" / "good"
BAD = FIXTURES / "bundles" / "bad"
SKU, OTHER, RESTOCKED = "3700000000011", "3700000000028", "3700000000035"


class Drop:
    """An advanced-mode partner p with a bundle source on ./bundles, the fixtures' stock and orders applied."""

    def __init__(self, root: Path, clock: FakeClock, **source: Any) -> None:
        self.folder = root / "bundles"
        self.folder.mkdir()
        given = {"name": "bundles-in", "type": "folder", "kind": "bundle", "path": "bundles"} | source
        self.config = write_config(root, {P: {"stock_mode": "advanced", "sources": [given]}})
        self.clock = clock
        self.apps: list[bootstrap.App] = []
        self.app = self.open()
        self.app.ingestor.ingest(P, Kind.STOCK, FIXTURES / "stock" / "good.csv")
        self.app.ingestor.ingest(P, Kind.ORDERS, FIXTURES / "orders" / "good.csv")

    def open(self) -> bootstrap.App:
        app = bootstrap.build(settings.load(self.config, environ={}), clock=self.clock)
        app.pickup = Pickup(app.store, app.settings, app.ingestor, app.clock, bootstrap.open_inbox, wait=no_wait)
        self.apps.append(app)
        return app

    @property
    def source(self) -> FolderSource:
        found = self.app.settings.partner(P).source("bundles-in")
        assert isinstance(found, FolderSource)
        return found

    def drop(self, folder: Path, manifest: str = "close-day.bundle.csv") -> None:
        """The members first, the manifest last (each renamed into place)."""
        for path in sorted(folder.iterdir()):
            if path.name != manifest and not path.name.endswith(".bundle.csv"):
                put(self.folder, path.name, path.read_bytes())
        put(self.folder, manifest, (folder / manifest).read_bytes())

    def close(self) -> None:
        for app in self.apps:
            app.close()


@pytest.fixture
def drop(tmp_path: Path, clock: FakeClock) -> Iterator[Drop]:
    built = Drop(tmp_path, clock)
    yield built
    built.close()


def test_a_bundle_source_takes_the_manifest_with_its_members_and_archives_them_together(drop: Drop) -> None:
    """One pass: one item (the manifest), applied as a bundle; manifest and members in archive/; the ledger's
    entries name each file by the source; only the restocked SKU's ATS is queued."""
    assert drop.source.pattern == "*.bundle.csv"
    drop.drop(GOOD)
    [picked] = drop.app.pickup.poll(P, drop.source)
    assert (picked.file, picked.outcome, picked.ok) == ("close-day.bundle.csv", "applied", True)
    assert (ats(drop.app, P, SKU), ats(drop.app, P, OTHER), ats(drop.app, P, RESTOCKED)) == (5, 3, 6)
    assert (status_of(drop.app, "O-1001"), status_of(drop.app, "O-1002")) == (OrderStatus.CLOSED,) * 2
    assert files(drop.folder) == set()
    assert files(drop.folder / "archive") == {"close-day.bundle.csv", "stock.csv", "acknowledgements.csv"}
    assert [(e.kind, e.source, e.outcome) for e in ledger(drop.app)[-3:]] == [
        ("bundle", "bundles-in:close-day.bundle.csv", "applied"),
        ("stock", "bundles-in:stock.csv", "bundled"),
        ("acknowledgements", "bundles-in:acknowledgements.csv", "bundled"),
    ]
    with drop.app.store.read() as tx:
        queued = [
            (m.key, m.value)
            for m in tx.outbox.rows(tx.partners.id_of(P))
            if m.ledger_id == picked.ledger_id and m.kind == "ats"
        ]
    assert queued == [(RESTOCKED, 6)]
    assert sorted(messages(drop.app, P, "order_closed")) == ["O-1001", "O-1002"]
    assert files(drop.app.settings.staging / P / "bundles-in") == set()  # staged copies removed


def test_members_without_their_manifest_are_never_taken(drop: Drop) -> None:
    """Files that do not match the pattern wait for a manifest naming them; nothing is applied or moved."""
    before = contents(drop.app)
    put(drop.folder, "stock.csv", (GOOD / "stock.csv").read_bytes())
    assert drop.app.pickup.poll(P, drop.source) == []
    assert files(drop.folder) == {"stock.csv"}
    assert contents(drop.app) == before


def test_a_malformed_member_sends_the_manifest_and_every_member_to_failed_with_reports(drop: Drop) -> None:
    """The bad fixture: nothing applied; the manifest's report lists the refused member at its line, each
    member's report its own problems (or why it was not applied)."""
    before = contents(drop.app)
    drop.drop(BAD)
    [picked] = drop.app.pickup.poll(P, drop.source)
    assert (picked.outcome, picked.ok) == ("rejected", False)
    assert contents(drop.app) == before
    failed = drop.folder / "failed"
    assert files(failed) == {
        f"{name}{suffix}"
        for name in ("close-day.bundle.csv", "stock.csv", "acknowledgements.csv")
        for suffix in ("", ".error.json")
    }
    assert files(drop.folder) == set()
    manifest_report = json.loads((failed / "close-day.bundle.csv.error.json").read_text(encoding="utf-8"))
    assert [(p["line"], p["column"]) for p in manifest_report["problems"]] == [(3, "file")]
    assert [m["outcome"] for m in manifest_report["members"]] == ["rejected", "rejected"]
    member_report = json.loads((failed / "acknowledgements.csv.error.json").read_text(encoding="utf-8"))
    assert [(p["line"], p["column"]) for p in member_report["problems"]] == [(2, "status")]
    assert member_report["bundle"] == "close-day.bundle.csv"
    stock_report = json.loads((failed / "stock.csv.error.json").read_text(encoding="utf-8"))
    assert stock_report["reason"] == "bundle_rejected"


def test_a_manifest_naming_a_missing_member_is_refused_with_the_members_that_are_there(drop: Drop) -> None:
    """A member not in the folder: the manifest refused (its line named), the member that is there moved to
    failed/ with it, nothing applied; a member in a sub-folder or matching the pattern is refused the same way."""
    before = contents(drop.app)
    put(drop.folder, "stock.csv", (GOOD / "stock.csv").read_bytes())
    manifest = b"kind,file\nstock,stock.csv\nacknowledgements,acks.csv\nstock,sub/x.csv\nstock,other.bundle.csv\n"
    put(drop.folder, "day.bundle.csv", manifest)
    [picked] = drop.app.pickup.poll(P, drop.source)
    assert picked.outcome == "rejected"
    assert contents(drop.app) == before
    assert files(drop.folder / "failed") == {
        "day.bundle.csv",
        "day.bundle.csv.error.json",
        "stock.csv",
        "stock.csv.error.json",
    }
    report = json.loads((drop.folder / "failed" / "day.bundle.csv.error.json").read_text(encoding="utf-8"))
    assert [(p["line"], p["message"].split(" ", 1)[1]) for p in report["problems"]] == [
        (3, "is not in the source's folder (write the members first, the manifest last)"),
        (4, "is in a sub-folder: a bundle source takes its members from its own folder"),
        (5, "matches the source's pattern '*.bundle.csv': it would be taken as a manifest"),
    ]
    assert (ledger(drop.app)[-1].kind, ledger(drop.app)[-1].outcome) == ("bundle", "rejected")


def test_the_same_bundle_again_is_archived_as_a_duplicate(drop: Drop) -> None:
    """Dropped again (same members, same order): a duplicate, nothing applied, all archived again."""
    drop.drop(GOOD)
    drop.app.pickup.poll(P, drop.source)
    after = contents(drop.app)
    drop.drop(GOOD)
    [picked] = drop.app.pickup.poll(P, drop.source)
    assert picked.outcome == "duplicate"
    assert contents(drop.app) == after
    assert files(drop.folder) == set()
    assert len(files(drop.folder / "archive")) == 6  # the second copies kept under new names


def test_a_process_killed_after_the_commit_archives_the_bundle_on_restart_without_reapplying(
    drop: Drop, tmp_path: Path
) -> None:
    """SIGKILL where the manifest would be moved (after the bundle's commit): a restart finds the bundle in the
    ledger, applies nothing again, and archives manifest and members."""
    drop.drop(GOOD)
    script = tmp_path / "crashing_child.py"
    script.write_text(CRASHING_CHILD, encoding="utf-8")
    child = subprocess.run(
        [sys.executable, str(script), str(drop.config), P, "bundles-in"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert child.returncode < 0, (child.returncode, child.stderr)
    assert files(drop.folder) == {"close-day.bundle.csv", "stock.csv", "acknowledgements.csv"}
    app = drop.open()
    assert ats(app, P, RESTOCKED) == 6  # committed before the kill
    before = contents(app)
    [picked] = app.pickup.poll(P, drop.source)
    assert picked.outcome == "duplicate"
    assert contents(app) == before
    assert files(drop.folder / "archive") == {"close-day.bundle.csv", "stock.csv", "acknowledgements.csv"}


@pytest.mark.slow
def test_an_sftp_source_of_bundles_takes_manifest_and_members(sshd: Remote, make_app: AppFactory) -> None:
    """Over SFTP: the members and the manifest downloaded, applied as one bundle, archived on the server together;
    the bad bundle goes to failed/ with its reports."""
    app = make_app(p={"stock_mode": "advanced", "sources": [sshd.source(kind="bundle")]})
    [source] = app.settings.partner("p").sources
    assert isinstance(source, SftpSource)
    app.commands.set_stock("p", SKU, 10, at("2019-06-25T12:00:00Z"))
    app.commands.place("p", "O-1001", [RequestedLine(SKU, 2)])
    app.commands.place("p", "O-1002", [RequestedLine(SKU, 3)])
    for name in ("stock.csv", "acknowledgements.csv"):
        sshd.put(name, (GOOD / name).read_bytes())
    sshd.put("close-day.bundle.csv", (GOOD / "close-day.bundle.csv").read_bytes())
    [picked] = app.pickup.poll("p", source)
    assert (picked.file, picked.outcome) == ("close-day.bundle.csv", "applied")
    assert ats(app, "p", SKU) == 5  # advanced: the closed lines allocate nothing, the stock is 5
    assert sshd.names("archive") == ["acknowledgements.csv", "close-day.bundle.csv", "stock.csv"]
    assert sshd.names() == ["archive"]

    for name in ("stock.csv", "acknowledgements.csv"):
        sshd.put(name, (BAD / name).read_bytes())
    sshd.put("close-day.bundle.csv", (BAD / "close-day.bundle.csv").read_bytes())
    [picked] = app.pickup.poll("p", source)
    assert picked.outcome == "rejected"
    assert "close-day.bundle.csv.error.json" in sshd.names("failed")
    assert "acknowledgements.csv.error.json" in sshd.names("failed")
