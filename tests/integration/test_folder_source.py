"""Local drop folders on a real temporary directory, through the real stack (issue 4).

Each test writes a configuration file with `[[partners.p.sources]]`, builds the app with bootstrap.build on
a real SQLite file, drops real files and runs real passes: files are taken only once complete, applied
exactly once, moved aside only after the commit, quarantined when they cannot be moved, and a process killed
between the commit and the move is followed by a restart that archives without applying again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from gateway import bootstrap, settings
from gateway.logs import configure
from gateway.service.pickup import Pickup
from gateway.settings import FolderSource
from gateway.store.port import LedgerRecord
from gateway.transport.folder import FolderInbox, FolderWatcher
from gateway.transport.inbox import Entry
from tests.conftest import FakeClock, write_config
from tests.integration.helpers import ats, contents

P = "p"
GATEWAY = [sys.executable, "-m", "gateway"]
LEDGER_KEYS = {
    "id",
    "kind",
    "source",
    "sha256",
    "size",
    "received_at",
    "outcome",
    "rows_applied",
    "rows_skipped",
    "rows_refused",
    "error",
    "reapply_of",
    "run_id",
    "warnings",
}

# The child of the crash test: the real app from the same configuration, killed by SIGKILL where the source
# file would be moved to archive/, that is after the ingest transaction (file and ledger entry) committed.
CRASHING_CHILD = """
import os
import signal
import sys
from pathlib import Path

from gateway import bootstrap, settings
from gateway.transport.folder import FolderInbox


def killed_before_the_move(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


FolderInbox.archive = killed_before_the_move
config, partner, source = sys.argv[1:4]
app = bootstrap.build(settings.load(Path(config), environ={}))
app.pickup.poll(partner, app.settings.partner(partner).source(source))
sys.exit(3)  # not reached: the archive move kills the process
"""


# helpers


def stock_csv(levels: dict[str, int]) -> bytes:
    return ("sku,quantity\n" + "".join(f"{sku},{quantity}\n" for sku, quantity in levels.items())).encode()


def put(folder: Path, name: str, data: bytes) -> Path:
    """Drop a file as a well-behaved writer does: under a temporary name, then renamed into place."""
    temporary = folder / f".{name}.part"
    temporary.write_bytes(data)
    os.replace(temporary, folder / name)
    return folder / name


def files(folder: Path) -> set[str]:
    """Names of the regular files and links directly in `folder` (no sub-folders)."""
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_symlink() or p.is_file()}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def ledger(app: bootstrap.App) -> list[LedgerRecord]:
    """The partner's ledger, oldest first."""
    with app.store.read() as tx:
        return list(reversed(tx.ledger.entries(tx.partners.id_of(P), 100_000)))


def stocked(app: bootstrap.App) -> dict[str, int]:
    """SKU -> stock level of every SKU the partner holds."""
    with app.store.read() as tx:
        return {record.sku: record.quantity for record in tx.stock.iterate(tx.partners.id_of(P))}


def source(app: bootstrap.App, name: str = "stock-in") -> FolderSource:
    found = app.settings.partner(P).source(name)
    assert isinstance(found, FolderSource)
    return found


def no_wait(seconds: float) -> None:
    raise AssertionError(f"this pass should not wait for stability ({seconds}s)")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}


class World:
    """A configuration file, drop folders beside it and apps built from it (closed at the end)."""

    def __init__(self, root: Path, clock: FakeClock) -> None:
        self.root = root
        self.clock = clock
        self.drop = root / "drop"
        self.config = root / "gateway.toml"
        self._apps: list[bootstrap.App] = []

    def configure(self, *sources: dict[str, Any]) -> Path:
        """Partner p with these folder sources (default: one stock source "stock-in" on ./drop)."""
        defaults = {"name": "stock-in", "type": "folder", "kind": "stock", "path": "drop"}
        rendered = [defaults | given for given in sources or ({},)]
        for given in rendered:
            (self.root / given["path"]).mkdir(parents=True, exist_ok=True)
        self.config = write_config(self.root, {P: {"stock_mode": "simple", "sources": rendered}})
        return self.config

    def app(self, wait: Callable[[float], None] | None = None) -> bootstrap.App:
        """The real app from the configuration file; `wait` replaces the pause between two looks."""
        app = bootstrap.build(settings.load(self.config, environ={}), clock=self.clock)
        self._apps.append(app)
        if wait is not None:
            app.pickup = Pickup(app.store, app.settings, app.ingestor, app.clock, bootstrap.open_inbox, wait=wait)
        return app

    @property
    def staging(self) -> Path:
        return self.root / "var" / "staging"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*GATEWAY, "--config", str(self.config), "--log-level", "error", *args],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
            check=False,
        )

    def close(self) -> None:
        for app in self._apps:
            app.close()


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock) -> Iterator[World]:
    built = World(tmp_path, clock)
    yield built
    built.close()


def test_sources_in_the_configuration_file_resolve_relative_to_it(world: World) -> None:
    world.configure({}, {"name": "orders-in", "kind": "orders", "path": "orders", "completion": "marker"})
    app = world.app()
    stock_in, orders_in = app.settings.partner(P).sources
    assert isinstance(stock_in, FolderSource)
    assert isinstance(orders_in, FolderSource)
    assert (stock_in.path, stock_in.completion, stock_in.kind.value) == (world.drop.resolve(), "rename", "stock")
    assert (orders_in.path, orders_in.completion, orders_in.kind.value) == (
        (world.root / "orders").resolve(),
        "marker",
        "orders",
    )


# (a) a slow writer


def test_a_slow_writer_is_not_taken_while_writing_and_is_taken_once_complete(world: World) -> None:
    """Stable mode: each pass looks twice; the writer adds a chunk in between, so nothing is taken until it stops."""
    levels = {f"SKU{i:03}": i + 1 for i in range(300)}
    data = stock_csv(levels)
    chunks = [data[i : i + 1024] for i in range(0, len(data), 1024)]  # boundaries fall in the middle of rows
    assert len(chunks) >= 4
    target = world.drop / "slow.csv"
    waits: list[float] = []
    pending = list(chunks)

    def wait(seconds: float) -> None:  # between the two looks of one pass, the writer writes its next chunk
        waits.append(seconds)
        if pending:
            writer.write(pending.pop(0))
            writer.flush()
            os.fsync(writer.fileno())

    world.configure({"completion": "stable", "stable_seconds": 2})
    app = world.app(wait=wait)
    stock_in = source(app)
    with target.open("wb") as writer:
        writer.write(pending.pop(0))
        writer.flush()
        passes = 0
        while pending:
            assert app.pickup.poll(P, stock_in) == [], f"taken while being written (after {passes} passes)"
            passes += 1
            assert files(world.drop) == {"slow.csv"}
            assert ledger(app) == []
    # the writer closed the file with its last chunk: the next pass sees it unchanged across its two looks
    [picked] = app.pickup.poll(P, stock_in)
    assert (picked.file, picked.outcome, picked.refused) == ("slow.csv", "applied", 0)
    assert waits == [2.0] * (passes + 1)
    [entry] = ledger(app)
    assert (entry.outcome, entry.rows_applied, entry.size) == ("applied", len(levels), len(data))
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert stocked(app) == levels
    assert files(world.drop) == set()
    assert (world.drop / "archive" / "slow.csv").read_bytes() == data


def test_a_file_that_changed_between_the_two_looks_is_not_taken_even_when_its_size_is_the_same(world: World) -> None:
    """Stable mode compares the time too: a same-size rewrite between the two looks keeps the file out."""
    world.configure({"completion": "stable"})
    target = world.drop / "same.csv"
    target.write_bytes(stock_csv({"A": 1}))
    first = target.stat().st_mtime_ns

    def rewrite(seconds: float) -> None:
        target.write_bytes(stock_csv({"A": 2}))
        os.utime(target, ns=(first + 5_000_000_000, first + 5_000_000_000))

    app = world.app(wait=rewrite)
    assert app.pickup.poll(P, source(app)) == []
    assert ledger(app) == []
    assert files(world.drop) == {"same.csv"}


def test_an_empty_file_being_filled_is_not_taken_until_it_is_stable(world: World) -> None:
    """Rename mode: a file that was empty at the first look and has grown by the second is still being written.

    Issue 4: "A file still being written is never taken; a zero-byte file is not taken until it is stable."
    """
    world.configure()
    levels = {"Z1": 1, "Z2": 2, "Z3": 3}
    data = stock_csv(levels)
    waits: list[float] = []

    def write_some(seconds: float) -> None:  # between the two looks, the writer writes its first row only
        waits.append(seconds)
        if len(waits) == 1:
            writer.write(data[: data.index(b"Z2")])
            writer.flush()

    app = world.app(wait=write_some)
    stock_in = source(app)
    with (world.drop / "late.csv").open("wb") as writer:  # created empty in place, as some writers do
        assert app.pickup.poll(P, stock_in) == [], "taken while being written"
        assert waits == [stock_in.stable_seconds]
        assert ledger(app) == []
        writer.write(data[data.index(b"Z2") :])
    [picked] = app.pickup.poll(P, stock_in)  # complete, not empty: rename mode takes it
    assert picked.outcome == "applied"
    assert stocked(app) == levels


# (b) rename into place


def test_temporary_names_are_never_taken_and_a_file_renamed_into_place_is(world: World) -> None:
    world.configure({"pattern": "*"})  # every name matches: only the temporary-name rule keeps them out
    app = world.app(wait=no_wait)
    stock_in = source(app)
    temporaries = {
        "stock.csv.part": stock_csv({"A": 1}),
        "stock.csv.tmp": stock_csv({"B": 2}),
        ".stock.csv": stock_csv({"C": 3}),
    }
    for name, data in temporaries.items():
        (world.drop / name).write_bytes(data)
    for _ in range(2):
        assert app.pickup.poll(P, stock_in) == []
    assert ledger(app) == []
    assert stocked(app) == {}
    assert files(world.drop) == set(temporaries)
    assert not (world.drop / "archive").exists()

    os.replace(world.drop / "stock.csv.part", world.drop / "stock.csv")
    [picked] = app.pickup.poll(P, stock_in)
    assert (picked.file, picked.outcome) == ("stock.csv", "applied")
    assert stocked(app) == {"A": 1}
    assert files(world.drop) == {"stock.csv.tmp", ".stock.csv"}
    assert (world.drop / "archive" / "stock.csv").read_bytes() == temporaries["stock.csv.part"]
    assert app.pickup.poll(P, stock_in) == []
    assert [(e.outcome, e.source) for e in ledger(app)] == [("applied", "stock-in:stock.csv")]


# (c) done-marker mode


@pytest.mark.parametrize("suffix", [".done", ".ready"])
def test_done_marker_mode_takes_a_file_only_with_its_marker_and_removes_the_marker(world: World, suffix: str) -> None:
    world.configure({"completion": "marker", "marker_suffix": suffix})
    app = world.app(wait=lambda seconds: None)  # markers are empty files: do not really sleep if a pass waits
    stock_in = source(app)
    data = stock_csv({"M": 4})
    (world.drop / "m.csv").write_bytes(data)  # complete, but no marker yet
    (world.drop / f"orphan.csv{suffix}").touch()  # a marker without its file
    (world.drop / f"m.csv{'.done' if suffix != '.done' else '.ready'}").touch()  # another mode's marker
    assert app.pickup.poll(P, stock_in) == []
    assert ledger(app) == []
    assert files(world.drop) >= {"m.csv"}

    (world.drop / f"m.csv{suffix}").touch()
    [picked] = app.pickup.poll(P, stock_in)
    assert (picked.file, picked.outcome) == ("m.csv", "applied")
    assert stocked(app) == {"M": 4}
    assert f"m.csv{suffix}" not in files(world.drop)  # the marker went with its file
    assert f"orphan.csv{suffix}" in files(world.drop)
    assert "m.csv" not in files(world.drop)
    assert files(world.drop / "archive") == {"m.csv"}  # the marker is removed, not archived
    assert app.pickup.poll(P, stock_in) == []
    assert [e.outcome for e in ledger(app)] == ["applied"]


def test_an_empty_done_marker_does_not_make_the_pass_wait_for_stability(world: World) -> None:
    """The marker is what says the file is complete: it is not a file to take, so its emptiness needs no second look.

    Otherwise every pass in marker mode sleeps `stable_seconds` (2 s by default) whenever a marker is present.
    """
    world.configure({"completion": "marker"})
    waits: list[float] = []
    app = world.app(wait=waits.append)
    put(world.drop, "m.csv", stock_csv({"M": 4}))
    (world.drop / "m.csv.done").touch()
    [picked] = app.pickup.poll(P, source(app))
    assert picked.outcome == "applied"
    assert waits == [], "an empty done-marker made the pass wait"


# (d) a storm of files


def test_a_storm_of_a_thousand_files_is_applied_exactly_once(world: World) -> None:
    """1,000 files at once, the last 10 repeating earlier contents: 990 applied, 10 duplicates, all archived."""
    per_pass = 300
    world.configure({"max_files_per_poll": per_pass})
    app = world.app(wait=no_wait)
    stock_in = source(app)
    names = [f"s{i:04}.csv" for i in range(1000)]
    for i, name in enumerate(names):
        n = i if i < 990 else i - 990
        put(world.drop, name, stock_csv({f"SKU{n:04}": n + 1}))

    taken = []
    sizes = []
    for _ in range(10):
        batch = app.pickup.poll(P, stock_in)
        if not batch:
            break
        sizes.append(len(batch))
        taken.extend(batch)
    assert sizes == [300, 300, 300, 100]
    assert sorted(item.file for item in taken) == names  # each file taken once
    assert Counter(item.outcome for item in taken) == {"applied": 990, "duplicate": 10}

    entries = ledger(app)
    assert Counter(e.outcome for e in entries) == {"applied": 990, "duplicate": 10}
    applied = [e for e in entries if e.outcome == "applied"]
    assert len({e.sha256 for e in applied}) == 990
    assert all(e.rows_applied == 1 for e in applied)
    assert {e.sha256 for e in entries if e.outcome == "duplicate"} <= {e.sha256 for e in applied}
    assert stocked(app) == {f"SKU{n:04}": n + 1 for n in range(990)}
    assert files(world.drop) == set()
    # the 10 repeats are of content older than the last applied: archived with a duplicate_of_older report
    reports = {f"{name}.error.json" for name in names[990:]}
    assert files(world.drop / "archive") == set(names) | reports
    for name in reports:
        report = json.loads((world.drop / "archive" / name).read_text(encoding="utf-8"))
        assert [w["warning"] for w in report["warnings"]] == ["duplicate_of_older"]
    assert not (world.drop / "failed").exists()
    assert files(world.staging / P / "stock-in") == set()  # staged copies are removed


# (e) a crash between the commit and the archive move


@pytest.mark.parametrize("restart", ["in-process", "cli"])
def test_a_process_killed_between_commit_and_archive_is_archived_on_restart_without_reapplying(
    world: World, restart: str
) -> None:
    world.configure()
    levels = {"K1": 10, "K2": 20, "K3": 30}
    data = stock_csv(levels)
    put(world.drop, "crash.csv", data)
    script = world.root / "crashing_child.py"
    script.write_text(CRASHING_CHILD, encoding="utf-8")

    child = subprocess.run(
        [sys.executable, str(script), str(world.config), P, "stock-in"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=world.root,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr)
    assert files(world.drop) == {"crash.csv"}  # not moved
    assert files(world.drop / "archive") == set()

    app = world.app(wait=no_wait)
    [entry] = ledger(app)  # committed: applied once
    assert (entry.outcome, entry.rows_applied, entry.source) == ("applied", 3, "stock-in:crash.csv")
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert stocked(app) == levels
    before = contents(app)

    if restart == "in-process":
        [picked] = app.pickup.poll(P, source(app))
        assert (picked.file, picked.outcome) == ("crash.csv", "duplicate")
    else:
        done = world.cli("poll", "--partner", P)
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert "crash.csv: duplicate" in done.stdout

    assert contents(app) == before  # nothing applied again: stock, orders, outbox unchanged
    first, second = ledger(app)
    assert first == entry
    assert (second.outcome, second.rows_applied, second.sha256) == ("duplicate", 0, entry.sha256)
    assert files(world.drop) == set()
    assert (world.drop / "archive" / "crash.csv").read_bytes() == data
    assert app.pickup.poll(P, source(app)) == []
    assert len(ledger(app)) == 2


# (f) malformed files and files with refused rows


def test_a_malformed_file_goes_to_failed_with_its_report_and_nothing_is_applied(world: World) -> None:
    world.configure()
    app = world.app(wait=no_wait)
    before = contents(app)
    data = b"sku,quantity\nA,1\nB,lots\nC,3\nD,-4\n"
    put(world.drop, "bad.csv", data)

    [picked] = app.pickup.poll(P, source(app))
    assert (picked.file, picked.outcome, picked.ok) == ("bad.csv", "rejected", False)
    assert contents(app) == before  # not even row A
    assert files(world.drop) == set()
    assert not (world.drop / "archive").exists()
    assert files(world.drop / "failed") == {"bad.csv", "bad.csv.error.json"}
    assert (world.drop / "failed" / "bad.csv").read_bytes() == data

    [entry] = ledger(app)
    assert entry.outcome == "rejected"
    assert entry.error
    report = json.loads((world.drop / "failed" / "bad.csv.error.json").read_text(encoding="utf-8"))
    assert report["ledger_id"] == entry.id == picked.ledger_id
    assert (report["outcome"], report["file"], report["source"]) == ("rejected", "bad.csv", "stock-in")
    assert report["sha256"] == hashlib.sha256(data).hexdigest()
    assert [problem["line"] for problem in report["problems"]] == [3, 5]
    assert all(problem["message"] for problem in report["problems"])
    assert report["rows_applied"] == 0


def test_an_orders_file_with_a_refused_order_is_archived_with_its_report_beside_it(world: World) -> None:
    world.configure({}, {"name": "orders-in", "kind": "orders", "path": "orders"})
    app = world.app(wait=no_wait)
    app.commands.set_stock(P, "A", 5, None)
    orders = world.root / "orders"
    put(orders, "orders.csv", b"order_id,sku,quantity,status\nO1,A,2,pending\nO2,A,10,pending\n")

    [picked] = app.pickup.poll(P, source(app, "orders-in"))
    assert (picked.outcome, picked.refused, picked.ok) == ("applied", 1, False)
    assert ats(app, P, "A") == 3  # O1 placed, O2 (over ATS) refused alone
    assert files(orders) == set()
    assert not (orders / "failed").exists()
    assert files(orders / "archive") == {"orders.csv", "orders.csv.error.json"}
    [entry] = ledger(app)
    assert (entry.outcome, entry.rows_applied, entry.rows_refused) == ("applied", 1, 1)
    report = json.loads((orders / "archive" / "orders.csv.error.json").read_text(encoding="utf-8"))
    assert report["ledger_id"] == entry.id
    assert [problem["line"] for problem in report["refused"]] == [3]
    assert report["problems"] == []


# (g) symbolic links


def test_a_symbolic_link_in_the_folder_is_refused_and_left_alone(world: World) -> None:
    world.configure()
    app = world.app(wait=no_wait)
    stock_in = source(app)
    outside = world.root / "outside"
    outside.mkdir()
    secret = outside / "secret.csv"
    secret.write_bytes(stock_csv({"SECRET": 99}))
    (world.drop / "link.csv").symlink_to(secret)
    (world.drop / "dir-link.csv").symlink_to(outside, target_is_directory=True)

    for _ in range(2):
        assert app.pickup.poll(P, stock_in) == []
    assert ledger(app) == []
    assert stocked(app) == {}
    assert (world.drop / "link.csv").is_symlink()
    assert files(world.drop) == {"link.csv", "dir-link.csv"}
    assert not (world.drop / "archive").exists()
    assert not (world.drop / "failed").exists()
    assert files(outside) == {"secret.csv"}

    inbox = FolderInbox(stock_in)
    assert inbox.entries() == []
    assert sorted(inbox.refused) == ["dir-link.csv", "link.csv"]


def test_a_file_swapped_for_a_link_after_listing_is_not_followed(world: World) -> None:
    """Listed as a regular file, replaced by a link to a file outside before the copy: the target is never read."""
    world.configure()
    app = world.app(wait=no_wait)
    secret = world.root / "secret.csv"
    secret.write_bytes(stock_csv({"SECRET": 99}))
    put(world.drop, "swap.csv", stock_csv({"SWAP": 1}))

    class SwappingInbox(FolderInbox):
        def entries(self) -> list[Entry]:
            found = super().entries()
            for entry in found:
                (self.folder / entry.name).unlink()
                (self.folder / entry.name).symlink_to(secret)
            return found

    pickup = Pickup(app.store, app.settings, app.ingestor, app.clock, SwappingInbox, wait=no_wait)
    [picked] = pickup.poll(P, source(app))
    assert (picked.file, picked.outcome) == ("swap.csv", "transport_error")
    assert stocked(app) == {}
    assert ledger(app) == []
    assert (world.drop / "swap.csv").is_symlink()
    assert files(world.staging / P / "stock-in") == set()


# (h) quarantine


def test_a_file_that_cannot_be_moved_is_quarantined_after_the_configured_failures(world: World) -> None:
    """Quarantined at the third failure, when the failures also span quarantine_after_seconds (a minute)."""
    world.configure({"max_transport_failures": 3, "quarantine_after_seconds": 60})
    app = world.app(wait=no_wait)
    stock_in = source(app)
    data = stock_csv({"Q": 1})
    put(world.drop, "q.csv", data)
    (world.drop / "archive").write_text("a file where the archive folder should be\n", encoding="utf-8")

    outcomes = []
    for _ in range(3):
        [picked] = app.pickup.poll(P, stock_in)
        outcomes.append(picked.outcome)
        assert files(world.drop) == {"q.csv", "archive"}
        world.clock.advance(30)
    assert outcomes == ["transport_error", "transport_error", "quarantined"]
    assert stocked(app) == {"Q": 1}  # applied by the first pass, recognised by the next ones
    entries = ledger(app)
    assert [e.outcome for e in entries] == ["applied", "duplicate", "duplicate", "quarantined"]
    assert entries[-1].error
    assert "3 transport failures" in entries[-1].error
    assert entries[-1].source == "stock-in:q.csv"

    def failures() -> list[tuple[int, bool]]:
        return [(row[3], row[5] is not None) for row in contents(app)["transport_failures"]]

    assert failures() == [(3, True)]
    for _ in range(2):  # skipped, and not counted again
        assert app.pickup.poll(P, stock_in) == []
    assert failures() == [(3, True)]
    assert len(ledger(app)) == 4

    (world.drop / "archive").unlink()  # the blocker goes away: the same file stays quarantined
    assert app.pickup.poll(P, stock_in) == []
    assert files(world.drop) == {"q.csv"}

    stat = (world.drop / "q.csv").stat()  # a new upload under the same name is a new file
    os.utime(world.drop / "q.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    [picked] = app.pickup.poll(P, stock_in)
    assert picked.outcome == "duplicate"
    assert files(world.drop) == set()
    assert (world.drop / "archive" / "q.csv").read_bytes() == data
    assert stocked(app) == {"Q": 1}
    assert [e.outcome for e in ledger(app)].count("applied") == 1


# (i) the watcher


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "polling-observer"])
def test_the_watcher_takes_files_present_at_start_and_files_renamed_in_later(world: World, poll: bool) -> None:
    # a long rescan interval: after the first pass, only file-system events can wake the watcher in time
    world.configure({"poll": poll, "rescan_seconds": 600})
    app = world.app(wait=no_wait)
    stock_in = source(app)
    put(world.drop, "first.csv", stock_csv({"F": 1}))
    watcher = FolderWatcher(stock_in, lambda: app.pickup.poll(P, stock_in))
    watcher.start()
    try:
        wait_until(lambda: files(world.drop / "archive") == {"first.csv"}, "the file present at start")
        put(world.drop, "second.csv", stock_csv({"S": 2}))
        wait_until(lambda: files(world.drop / "archive") == {"first.csv", "second.csv"}, "the renamed file")
    finally:
        started = time.monotonic()
        watcher.stop()
        stopping = time.monotonic() - started
    assert stopping < 5
    assert stocked(app) == {"F": 1, "S": 2}
    assert sorted((e.outcome, e.source) for e in ledger(app)) == [
        ("applied", "stock-in:first.csv"),
        ("applied", "stock-in:second.csv"),
    ]
    assert files(world.drop) == set()


# (j) the CLI


def test_poll_and_ledger_through_the_cli(world: World) -> None:
    world.configure({}, {"name": "orders-in", "kind": "orders", "path": "orders"})
    a, b = stock_csv({"A": 5}), stock_csv({"B": 6, "C": 7})
    put(world.drop, "a.csv", a)
    put(world.drop, "b.csv", b)

    done = world.cli("poll", "--partner", P)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "stock-in: a.csv: applied" in done.stdout
    assert "stock-in: b.csv: applied" in done.stdout
    assert "orders-in: nothing to take" in done.stdout
    assert files(world.drop / "archive") == {"a.csv", "b.csv"}

    shown = world.cli("ledger", "--partner", P, "--json")
    assert shown.returncode == 0, shown.stderr
    entries = json.loads(shown.stdout)
    assert [set(e) for e in entries] == [LEDGER_KEYS, LEDGER_KEYS]
    assert entries[0]["id"] > entries[1]["id"]  # newest first
    by_source = {e["source"]: e for e in entries}
    for name, data, rows in (("a.csv", a, 1), ("b.csv", b, 2)):
        entry = by_source[f"stock-in:{name}"]
        assert entry["kind"] == "stock"
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert re.fullmatch("[0-9a-f]{16}", entry["run_id"]), entry  # the poll's run for this file (0012)
        assert entry["size"] == len(data)
        assert datetime.fromisoformat(entry["received_at"]).tzinfo is not None
        assert (entry["outcome"], entry["rows_applied"], entry["rows_skipped"], entry["rows_refused"]) == (
            "applied",
            rows,
            0,
            0,
        )
        assert entry["error"] is None

    put(world.drop, "bad.csv", b"sku,quantity\nA,1\nB,lots\n")
    done = world.cli("poll", "--partner", P, "--source", "stock-in")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "bad.csv: rejected" in done.stderr
    newest = json.loads(world.cli("ledger", "--partner", P, "--json").stdout)[0]
    assert (newest["source"], newest["outcome"], newest["rows_applied"]) == ("stock-in:bad.csv", "rejected", 0)
    assert "line 3" in newest["error"]
    assert files(world.drop / "failed") == {"bad.csv", "bad.csv.error.json"}

    put(world.root / "orders", "orders.csv", b"order_id,sku,quantity,status\nO1,A,2,pending\nO2,A,10,pending\n")
    done = world.cli("poll", "--partner", P, "--source", "orders-in")
    assert done.returncode == 1, (done.stdout, done.stderr)  # applied, but a row was refused
    assert "orders.csv: applied" in done.stderr

    done = world.cli("poll", "--partner", P)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "stock-in: nothing to take" in done.stdout
    assert "orders-in: nothing to take" in done.stdout
    assert len(json.loads(world.cli("ledger", "--partner", P, "--json").stdout)) == 4


def test_poll_exit_code_does_not_depend_on_the_file_name(world: World) -> None:
    """A refused row makes the pass exit 1 whatever the file is called."""
    world.configure({"name": "orders-in", "kind": "orders", "path": "orders"})
    app = world.app(wait=no_wait)
    app.commands.set_stock(P, "A", 5, None)
    put(world.root / "orders", "refused 0.csv", b"order_id,sku,quantity,status\nO1,A,2,pending\nO2,A,10,pending\n")
    done = world.cli("poll", "--partner", P)
    assert "refused 0.csv: applied" in done.stdout + done.stderr
    assert [(e.outcome, e.rows_refused) for e in ledger(app)] == [("applied", 1)]
    assert done.returncode == 1, (done.stdout, done.stderr)


# (k) names and links the gateway never takes, names that are not UTF-8


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    """The structlog events of the test, every level."""
    configure("json", None, "debug")
    with structlog.testing.capture_logs() as captured:
        yield captured


def test_a_file_named_in_latin_1_is_taken_under_an_escaped_name_and_the_others_go_on(world: World) -> None:
    """A legacy Windows name (caf\\xe9-stock.csv, not UTF-8) beside good files: `gateway poll` exits 0 without a
    traceback, every file is applied and archived, the odd one under its own bytes with its name escaped in the
    ledger."""
    world.configure()
    put(world.drop, "a.csv", stock_csv({"A": 1}))
    latin = os.path.join(os.fsencode(world.drop), b"caf\xe9-stock.csv")
    with open(latin, "wb") as out:
        out.write(stock_csv({"CAFE": 2}))
    put(world.drop, "z.csv", stock_csv({"Z": 3}))

    done = world.cli("poll", "--partner", P)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert "caf\\xe9-stock.csv: applied" in done.stdout
    app = world.app(wait=no_wait)
    assert stocked(app) == {"A": 1, "CAFE": 2, "Z": 3}
    assert sorted(e.source for e in ledger(app)) == ["stock-in:a.csv", "stock-in:caf\\xe9-stock.csv", "stock-in:z.csv"]
    assert files(world.drop) == set()
    assert sorted(os.listdir(os.fsencode(world.drop / "archive"))) == [b"a.csv", b"caf\xe9-stock.csv", b"z.csv"]


def test_names_never_taken_are_logged_once_and_left_while_the_good_file_is_applied(
    world: World, events: list[dict[str, Any]]
) -> None:
    """A backslash or a control character in the name: `file_name_refused` once per file, however many passes."""
    world.configure()
    app = world.app(wait=no_wait)
    stock_in = source(app)
    for name in ("back\\slash.csv", "bell\x07.csv", "good.csv"):
        put(world.drop, name, stock_csv({"G": 1}))

    assert [p.file for p in app.pickup.poll(P, stock_in)] == ["good.csv"]
    assert app.pickup.poll(P, stock_in) == []
    refused = sorted((e["file"], e["reason"]) for e in events if e["event"] == "file_name_refused")
    assert refused == [
        ("back\\slash.csv", "the name holds a path separator"),
        ("bell\\x07.csv", "the name holds control characters"),
    ]
    assert files(world.drop) == {"back\\slash.csv", "bell\x07.csv"}
    assert [e.source for e in ledger(app)] == ["stock-in:good.csv"]


def test_a_hard_link_is_refused_like_a_symbolic_link_until_it_is_the_only_name(
    world: World, events: list[dict[str, Any]]
) -> None:
    """A file with a second name (here outside the folder) is not taken, and said so once; once the other name
    is gone it is an ordinary file and is taken."""
    world.configure()
    app = world.app(wait=no_wait)
    stock_in = source(app)
    put(world.drop, "linked.csv", stock_csv({"L": 4}))
    os.link(world.drop / "linked.csv", world.root / "elsewhere.csv")

    for _ in range(2):
        assert app.pickup.poll(P, stock_in) == []
    assert [(e["event"], e["file"]) for e in events if e["event"] == "file_link_refused"] == [
        ("file_link_refused", "linked.csv")
    ]
    assert files(world.drop) == {"linked.csv"}
    assert ledger(app) == []

    (world.root / "elsewhere.csv").unlink()
    assert [(p.file, p.outcome) for p in app.pickup.poll(P, stock_in)] == [("linked.csv", "applied")]
    assert stocked(app) == {"L": 4}


def test_a_file_linked_after_the_listing_is_not_read(world: World) -> None:
    """Listed with one name, hard-linked before the copy: a transport error, nothing applied."""
    world.configure()
    app = world.app(wait=no_wait)
    put(world.drop, "late.csv", stock_csv({"LATE": 1}))

    class LinkingInbox(FolderInbox):
        def entries(self) -> list[Entry]:
            found = super().entries()
            os.link(self.folder / "late.csv", world.root / "second-name.csv")
            return found

    pickup = Pickup(app.store, app.settings, app.ingestor, app.clock, LinkingInbox, wait=no_wait)
    [picked] = pickup.poll(P, source(app))
    assert (picked.file, picked.outcome) == ("late.csv", "transport_error")
    assert "hard links" in picked.detail
    assert stocked(app) == {}
