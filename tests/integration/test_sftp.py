"""SFTP sources against a real OpenSSH sshd on 127.0.0.1, through the whole stack (bootstrap.build, Pickup.poll).

The test uploads with its own paramiko client; the gateway connects with its own, checking the host key.
Nothing here waits a fixed time to synchronise: it polls for a state with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from gateway.bootstrap import App
from gateway.logs import configure
from gateway.service.pickup import PickedUp, Pickup
from gateway.settings import SftpSource
from gateway.store.port import LedgerRecord
from gateway.transport.inbox import HostKeyRejected
from gateway.transport.sftp import SftpInbox
from tests.conftest import FIXTURES, AppFactory
from tests.integration.conftest import Remote
from tests.integration.helpers import contents, stock

pytestmark = pytest.mark.slow

AS_OF = "2026-01-01T00:00:00Z"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, for remote modification times


def snapshot(quantities: dict[str, int], as_of: str = AS_OF, note: str = "") -> str:
    """A stock snapshot; `note` pads every row (an extra column the reader ignores) to make big files."""
    if note:
        return "sku,quantity,as_of,note\n" + "".join(f"{s},{q},{as_of},{note}\n" for s, q in quantities.items())
    return "sku,quantity,as_of\n" + "".join(f"{s},{q},{as_of}\n" for s, q in quantities.items())


def skus(count: int, prefix: str = "SKU") -> dict[str, int]:
    return {f"{prefix}{i:06d}": i % 97 for i in range(count)}


def growing(folder: Path) -> bool:
    """A staging .part file with bytes in it (one that is renamed or removed meanwhile does not count)."""
    for part in folder.glob(".*.part"):
        try:
            if part.stat().st_size > 0:
                return True
        except FileNotFoundError:
            continue
    return False


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.002)


def ledger(app: App, partner: str = "p") -> list[LedgerRecord]:
    """Newest first."""
    with app.store.read() as tx:
        return tx.ledger.entries(tx.partners.id_of(partner))


def outcomes(picked: list[PickedUp]) -> list[tuple[str, str]]:
    return [(item.file, item.outcome) for item in picked]


def sftp_app(make_app: AppFactory, remote: Remote, **options: Any) -> tuple[App, SftpSource]:
    app = make_app(p={"stock_mode": "simple", "sources": [remote.source(**options)]})
    [source] = app.settings.partner("p").sources
    assert isinstance(source, SftpSource)
    return app, source


def staged_files(app: App, source: SftpSource) -> list[str]:
    folder = app.settings.staging / "p" / source.name
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def gateway(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "--log-level", "error", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


# (a) a slow upload


def test_a_file_uploaded_slowly_in_chunks_is_not_taken_before_it_is_complete(
    sshd: Remote, make_app: AppFactory
) -> None:
    """Stable mode: while the writer is still appending, a pass takes nothing; once complete, it is applied once."""
    app, source = sftp_app(make_app, sshd, completion="stable", stable_seconds=0.3)
    body = snapshot(skus(2_000)).encode()
    chunk = 97  # cuts rows in the middle: a partial file would be a shorter (or malformed) snapshot
    finish = threading.Event()
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            with sshd.sftp.open(sshd.remote("slow.csv"), "wb") as out:
                position = 0
                # keep appending while the test polls; keep the last chunk back until told to finish
                while not finish.is_set() and position + chunk < len(body):
                    out.write(body[position : position + chunk])
                    out.flush()
                    position += chunk
                    finish.wait(0.02)  # the writer's own pace, a chunk every 20 ms
                finish.wait(30)
                out.write(body[position:])
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    thread = threading.Thread(target=writer, name="slow-uploader")
    thread.start()
    try:
        wait_until(lambda: (sshd.path / "slow.csv").exists() and (sshd.path / "slow.csv").stat().st_size > 0, "bytes")
        during = app.pickup.poll("p", source)
        still_writing = (sshd.path / "slow.csv").stat().st_size < len(body)
    finally:
        finish.set()
        thread.join(30)
    assert not failures, failures
    assert still_writing, "the upload finished before the pass: the test proved nothing"
    assert during == []
    assert ledger(app) == []
    assert (sshd.path / "slow.csv").read_bytes() == body

    # The first pass after completion may still see a size that differs from the previous pass's look.
    after: list[PickedUp] = []
    for _ in range(2):
        after += app.pickup.poll("p", source)
        if after:
            break
    assert outcomes(after) == [("slow.csv", "applied")]
    [entry] = ledger(app)
    assert (entry.outcome, entry.rows_applied, entry.size) == ("applied", 2_000, len(body))
    assert stock(app, "p", "SKU001999") == 1999 % 97
    assert app.pickup.poll("p", source) == []
    assert sshd.names() == ["archive"]
    assert sshd.names("archive") == ["slow.csv"]


# (b) done-marker mode, through the CLI


def test_done_marker_mode_waits_for_the_marker_and_removes_it_through_the_cli(
    sshd: Remote, make_app: AppFactory, tmp_path: Path
) -> None:
    """NAME.csv without NAME.csv.done is left alone; with it, applied, archived and the marker removed."""
    app, _ = sftp_app(make_app, sshd, completion="marker")
    config = tmp_path / "gateway.toml"
    body = (FIXTURES / "stock" / "good.csv").read_bytes()
    sshd.put("good.csv", body)

    first = gateway(config, "poll", "--partner", "p")
    assert first.returncode == 0, first.stderr
    assert "nothing to take" in first.stdout
    assert ledger(app) == []
    assert sshd.names() == ["good.csv"]

    sshd.put("good.csv.done", b"")
    second = gateway(config, "poll", "--partner", "p")
    assert second.returncode == 0, second.stderr
    assert "good.csv: applied" in second.stdout
    assert sshd.names() == ["archive"]  # the marker is gone
    assert sshd.names("archive") == ["good.csv"]
    assert stock(app, "p", "3700000000011") == 10

    listed = gateway(config, "ledger", "--partner", "p", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    assert (entry["outcome"], entry["rows_applied"], entry["source"]) == ("applied", 3, "stock-sftp-1:good.csv")


# (c) temporary name, then rename


def test_a_temporary_name_is_ignored_until_the_file_is_renamed_into_place(sshd: Remote, make_app: AppFactory) -> None:
    """Rename mode: NAME.part (and .tmp, and dot-names) are never taken; the renamed file is."""
    app, source = sftp_app(make_app, sshd)  # completion = "rename" by default
    body = (FIXTURES / "stock" / "good.csv").read_bytes()
    sshd.put("good.csv.part", body)
    sshd.put("other.csv.tmp", body)
    sshd.put(".hidden.csv", body)
    assert app.pickup.poll("p", source) == []
    assert ledger(app) == []

    sshd.rename("good.csv.part", "good.csv")
    assert outcomes(app.pickup.poll("p", source)) == [("good.csv", "applied")]
    assert [e.outcome for e in ledger(app)] == ["applied"]
    assert sshd.names() == [".hidden.csv", "archive", "other.csv.tmp"]


# (d) the same content twice


def test_the_same_content_under_two_names_is_applied_once_and_both_are_archived(
    sshd: Remote, make_app: AppFactory
) -> None:
    """The second is a duplicate of the first (by sha256): nothing applied twice; both moved aside."""
    app, source = sftp_app(make_app, sshd)
    body = snapshot({"A": 5, "B": 7})
    sshd.put("monday.csv", body, mtime=T0)
    sshd.put("monday-again.csv", body, mtime=T0 + 60)
    picked = app.pickup.poll("p", source)
    assert outcomes(picked) == [("monday.csv", "applied"), ("monday-again.csv", "duplicate")]
    duplicate, applied = ledger(app)
    assert (applied.outcome, applied.rows_applied) == ("applied", 2)
    assert (duplicate.outcome, duplicate.rows_applied, duplicate.sha256) == ("duplicate", 0, applied.sha256)
    assert sshd.names() == ["archive"]
    assert sshd.names("archive") == ["monday-again.csv", "monday.csv"]
    assert stock(app, "p", "A") == 5


# (e) a malformed file


def test_a_malformed_file_goes_to_failed_with_its_report_and_nothing_is_applied(
    sshd: Remote, make_app: AppFactory
) -> None:
    """failed/NAME and failed/NAME.error.json: the problems with their line numbers and the ledger id."""
    app, source = sftp_app(make_app, sshd)
    before = contents(app)
    sshd.put("bad.csv", (FIXTURES / "stock" / "bad_quantity.csv").read_bytes())
    [picked] = app.pickup.poll("p", source)
    assert (picked.file, picked.outcome) == ("bad.csv", "rejected")
    assert contents(app) == before
    [entry] = ledger(app)
    assert (entry.outcome, entry.rows_applied, entry.id) == ("rejected", 0, picked.ledger_id)

    assert sshd.names() == ["failed"]
    assert sshd.names("failed") == ["bad.csv", "bad.csv.error.json"]
    report = json.loads((sshd.path / "failed" / "bad.csv.error.json").read_text(encoding="utf-8"))
    assert report["ledger_id"] == entry.id
    assert report["file"] == "bad.csv"
    assert report["outcome"] == "rejected"
    assert [(p["line"], p["column"]) for p in report["problems"]] == [(3, "quantity"), (4, "quantity")]
    assert app.pickup.poll("p", source) == []


# (f) an unknown host key


def test_an_unknown_host_key_is_refused_with_a_clear_error(sshd: Remote, make_app: AppFactory, tmp_path: Path) -> None:
    """Another key for this host and port, or no entry at all: refused before anything is read; the CLI says so."""
    wrong = sshd.server.other_known_hosts(tmp_path / "wrong_known_hosts")
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    app = make_app(
        p={
            "stock_mode": "simple",
            "sources": [
                sshd.source(name="wrong-key", known_hosts=str(wrong)),
                sshd.source(name="no-key", known_hosts=str(empty)),
            ],
        }
    )
    sshd.put("good.csv", (FIXTURES / "stock" / "good.csv").read_bytes())
    partner = app.settings.partner("p")

    with pytest.raises(HostKeyRejected, match="host key that differs"):
        app.pickup.poll("p", partner.source("wrong-key"))
    with pytest.raises(HostKeyRejected, match="unknown host key refused"):
        app.pickup.poll("p", partner.source("no-key"))
    assert ledger(app) == []
    assert sshd.names() == ["good.csv"]

    done = gateway(tmp_path / "gateway.toml", "poll", "--partner", "p", "--source", "wrong-key")
    assert done.returncode == 1
    assert f"gateway: source wrong-key: 127.0.0.1:{sshd.server.port} presented a host key that differs" in done.stderr
    assert "Traceback" not in done.stderr
    assert sshd.names() == ["good.csv"]


# (g) a connection cut mid-download


def test_a_connection_cut_mid_download_leaves_nothing_and_the_file_is_taken_next_time(
    sshd: Remote, make_app: AppFactory
) -> None:
    """Kill the sshd session processes while the staging file grows: a transport error, no staging file, no
    ledger entry, the remote file in place; the next pass applies it."""
    app, source = sftp_app(make_app, sshd)
    rows = skus(8_000)
    body = snapshot(rows, note="x" * 4_000).encode()  # about 32 MB
    (sshd.path / "big.csv.part").write_bytes(body)  # written beside, then renamed into place, like a writer
    sshd.rename("big.csv.part", "big.csv")
    staging = app.settings.staging / "p" / source.name
    cut: list[int] = []

    def cutter() -> None:
        try:
            wait_until(lambda: growing(staging), "the staging file to grow", timeout=20)
        except AssertionError:
            return
        cut.extend(sshd.server.kill_sessions())

    thread = threading.Thread(target=cutter, name="connection-cutter")
    thread.start()
    try:
        first = app.pickup.poll("p", source)
    finally:
        thread.join(30)
    assert cut, "the connection was not cut"
    assert [(item.file, item.outcome) for item in first] == [("big.csv", "transport_error")], first
    assert staged_files(app, source) == []
    assert ledger(app) == []
    assert stock(app, "p", "SKU000001") == 0
    assert sshd.names() == ["big.csv"]

    second = app.pickup.poll("p", source)
    assert outcomes(second) == [("big.csv", "applied")]
    [entry] = ledger(app)
    assert (entry.rows_applied, entry.size) == (len(rows), len(body))
    assert staged_files(app, source) == []
    assert sshd.names("archive") == ["big.csv"]


def test_a_connection_cut_while_read_ahead_is_being_requested_raises_nothing_in_a_background_thread(
    sshd: Remote, make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dropped connection is the download's error, reported once as a transport error; no thread of the
    gateway dies with an unhandled exception (a raw traceback on stderr, outside the structured log).

    A 4 GiB sparse file: reads are still being requested when the cut comes (paramiko's own read-ahead sends
    131,072 requests for it from a thread of its own).
    """
    app, source = sftp_app(make_app, sshd)
    with (sshd.path / "huge.csv").open("wb") as huge:
        huge.truncate(4 << 30)
    staging = app.settings.staging / "p" / source.name
    stray: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda a: stray.append(f"{a.thread.name}: {a.exc_type.__name__}"))
    before = set(threading.enumerate())

    def cutter() -> None:
        try:
            wait_until(lambda: growing(staging), "the staging file to grow", timeout=10)
        finally:
            sshd.server.kill_sessions()  # whatever happens: never let it download 4 GiB

    thread = threading.Thread(target=cutter, name="connection-cutter")
    thread.start()
    try:
        picked = app.pickup.poll("p", source)
    finally:
        thread.join(30)
    assert outcomes(picked) == [("huge.csv", "transport_error")]
    assert staged_files(app, source) == []
    wait_until(lambda: set(threading.enumerate()) <= before, "the gateway's threads to end")
    assert stray == [], "unhandled exceptions in background threads"


# (h) at most N files per pass


def test_max_files_per_poll_applies_after_sorting_by_time_then_name(sshd: Remote, make_app: AppFactory) -> None:
    """Oldest first by the server's modification time, then by name; at most max_files_per_poll per pass."""
    app, source = sftp_app(make_app, sshd, max_files_per_poll=2)
    times = {"a.csv": T0 + 300, "b.csv": T0 + 200, "c.csv": T0 + 100, "d.csv": T0 + 200, "e.csv": T0 + 50}
    for position, (name, mtime) in enumerate(times.items()):
        sshd.put(name, snapshot({name: position}), mtime=mtime)

    assert [item.file for item in app.pickup.poll("p", source)] == ["e.csv", "c.csv"]
    assert sshd.names() == ["a.csv", "archive", "b.csv", "d.csv"]
    assert [item.file for item in app.pickup.poll("p", source)] == ["b.csv", "d.csv"]
    assert [item.file for item in app.pickup.poll("p", source)] == ["a.csv"]
    assert app.pickup.poll("p", source) == []
    assert [e.source for e in reversed(ledger(app))] == [
        f"{source.name}:{name}" for name in ("e.csv", "c.csv", "b.csv", "d.csv", "a.csv")
    ]


# (i) links and folders


def test_links_and_folders_are_not_taken(sshd: Remote, make_app: AppFactory) -> None:
    """A symbolic link (to a file outside the folder, or to a folder) and a sub-folder named like a file."""
    app, source = sftp_app(make_app, sshd)
    outside = sshd.server.remote_folder()
    (outside / "secret.csv").write_text(snapshot({"SECRET": 1}))
    sshd.put("real.csv", snapshot({"REAL": 3}))
    sshd.sftp.symlink(str(outside / "secret.csv"), sshd.remote("link.csv"))
    sshd.sftp.symlink(str(outside), sshd.remote("folder-link.csv"))
    sshd.sftp.mkdir(sshd.remote("folder.csv"))
    sshd.put("folder.csv/inner.csv", snapshot({"INNER": 2}))
    assert (sshd.path / "link.csv").is_symlink()
    assert (sshd.path / "folder-link.csv").is_symlink()

    assert outcomes(app.pickup.poll("p", source)) == [("real.csv", "applied")]
    assert [e.source for e in ledger(app)] == [f"{source.name}:real.csv"]
    assert (stock(app, "p", "REAL"), stock(app, "p", "SECRET"), stock(app, "p", "INNER")) == (3, 0, 0)
    assert sshd.names() == ["archive", "folder-link.csv", "folder.csv", "link.csv"]
    assert (outside / "secret.csv").exists()


# (j) names that are not UTF-8, names never taken, hard links


def test_files_named_in_latin_1_are_taken_and_moved_aside_under_their_own_bytes(
    sshd: Remote, make_app: AppFactory, tmp_path: Path
) -> None:
    """paramiko's own listing stops at a Latin-1 name; the gateway lists names as bytes: `gateway poll` exits
    without a traceback, the good files and the Latin-1 one are applied and archived, a malformed Latin-1 one goes
    to failed/ with its report, each under its own bytes on the server and with its name escaped in the ledger."""
    app, _ = sftp_app(make_app, sshd)
    sshd.put("a.csv", snapshot({"A": 1}), mtime=T0)
    folder = os.fsencode(sshd.path)
    (Path(os.fsdecode(os.path.join(folder, b"caf\xe9-stock.csv")))).write_text(snapshot({"CAFE": 2}))
    os.utime(os.path.join(folder, b"caf\xe9-stock.csv"), (T0 + 1, T0 + 1))
    with open(os.path.join(folder, b"m\xfcll.csv"), "wb") as out:
        out.write(b"sku,quantity\nX,lots\n")
    os.utime(os.path.join(folder, b"m\xfcll.csv"), (T0 + 2, T0 + 2))
    sshd.put("z.csv", snapshot({"Z": 3}), mtime=T0 + 3)

    done = gateway(tmp_path / "gateway.toml", "poll", "--partner", "p")
    assert done.returncode == 1, (done.stdout, done.stderr)  # the malformed file is refused
    assert "Traceback" not in done.stderr
    assert "caf\\xe9-stock.csv: applied" in done.stdout
    assert "m\\xfcll.csv: rejected" in done.stderr
    assert [(e.source, e.outcome) for e in reversed(ledger(app))] == [
        ("stock-sftp-1:a.csv", "applied"),
        ("stock-sftp-1:caf\\xe9-stock.csv", "applied"),
        ("stock-sftp-1:m\\xfcll.csv", "rejected"),
        ("stock-sftp-1:z.csv", "applied"),
    ]
    assert (stock(app, "p", "A"), stock(app, "p", "CAFE"), stock(app, "p", "Z")) == (1, 2, 3)
    assert sorted(os.listdir(folder)) == [b"archive", b"failed"]
    assert sorted(os.listdir(os.path.join(folder, b"archive"))) == [b"a.csv", b"caf\xe9-stock.csv", b"z.csv"]
    assert sorted(os.listdir(os.path.join(folder, b"failed"))) == [b"m\xfcll.csv", b"m\xfcll.csv.error.json"]
    report = json.loads(Path(os.fsdecode(os.path.join(folder, b"failed", b"m\xfcll.csv.error.json"))).read_bytes())
    assert report["file"] == "m\\xfcll.csv"


def test_hard_links_and_names_never_taken_are_refused_once_and_the_good_file_is_applied(
    sshd: Remote, make_app: AppFactory
) -> None:
    """The link count comes from the server's long listing: a file with a second name is not taken; a backslash
    or a control character in a name is logged once as file_name_refused, not skipped silently for ever."""
    app, source = sftp_app(make_app, sshd)
    configure("json", None, "debug")
    sshd.put("good.csv", snapshot({"G": 1}))
    sshd.put("linked.csv", snapshot({"L": 2}))
    os.link(sshd.path / "linked.csv", sshd.server.remote_folder() / "second-name.csv")
    sshd.put("back\\slash.csv", snapshot({"B": 3}))
    sshd.put("tab\t.csv", snapshot({"T": 4}))

    with structlog.testing.capture_logs() as events:
        assert outcomes(app.pickup.poll("p", source)) == [("good.csv", "applied")]
        assert app.pickup.poll("p", source) == []
    refused = sorted((e["event"], e["file"]) for e in events if e["event"].endswith("_refused"))
    assert refused == [
        ("file_link_refused", "linked.csv"),
        ("file_name_refused", "back\\slash.csv"),
        ("file_name_refused", "tab\\x09.csv"),
    ]
    assert sshd.names() == ["archive", "back\\slash.csv", "linked.csv", "tab\t.csv"]
    assert (stock(app, "p", "G"), stock(app, "p", "L"), stock(app, "p", "B")) == (1, 0, 0)


# (k) a server that stops answering


def test_a_download_that_times_out_says_what_timed_out(sshd: Remote, make_app: AppFactory) -> None:
    """The server's session is stopped (SIGSTOP) after the listing: the file's transport error names the
    channel_timeout that ran out, instead of an empty reason."""
    app, source = sftp_app(make_app, sshd, channel_timeout=0.5)
    sshd.put("a.csv", snapshot({"A": 1}))
    before = set(sshd.server.session_pids())
    stopped: list[int] = []

    class StallingInbox(SftpInbox):
        def fetch_many(self, entries: Any, staging: Path) -> Any:
            stopped.extend(pid for pid in sshd.server.session_pids() if pid not in before)
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)
            return super().fetch_many(entries, staging)

    def stalling(settings: Any) -> StallingInbox:
        inbox = StallingInbox(settings)
        inbox.connect()
        return inbox

    pickup = Pickup(app.store, app.settings, app.ingestor, app.clock, stalling)
    try:
        [picked] = pickup.poll("p", source)
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGCONT)
    assert stopped, "no session of the gateway's connection was found"
    assert (picked.file, picked.outcome) == ("a.csv", "transport_error")
    assert picked.detail.endswith("failed: no answer from the server within channel_timeout (0.5 s)"), picked.detail
    assert ledger(app) == []
    assert sshd.names() == ["a.csv"]
