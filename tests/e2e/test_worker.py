"""The worker (`gateway run`) as a real process, checked from the outside.

Each test starts `python -m gateway run --config X` on a temporary configuration with real sources (a watched
folder, a real OpenSSH sshd on 127.0.0.1) and a real partner HTTP server (tests.support.partner), then looks at
what users see: its JSON log lines, its health endpoint, the drop folders, the partner's view, and the `gateway`
commands (`ledger`, `ats`, `status`). Nothing waits a fixed time: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from tests.conftest import FIXTURES
from tests.support import sshd as sshd_support
from tests.support.partner import FakePartner, Slow
from tests.support.worker import (
    Gateway,
    WorkerProcess,
    big_stock_csv,
    drop,
    gateway_json,
    restart_sshd,
    stock_csv,
    wait_until,
    write_worker_config,
)

TOKEN_ENV = "E2E_PARTNER_TOKEN"  # noqa: S105 - the name of the variable, not a secret
ENV = {TOKEN_ENV: "partner-token"}
T1 = "2026-01-01T10:00:00Z"
T2 = "2026-01-01T11:00:00Z"
T3 = "2026-01-01T12:00:00Z"
T4 = "2026-01-01T13:00:00Z"
# delivery that retries soon after a failure, so a partner that comes back is served within a second
FAST_DELIVERY = {"retries": 1, "backoff_initial": 0.05, "backoff_max": 0.5, "breaker_pause": 0.5}

Spawn = Callable[..., WorkerProcess]


# --- fixtures and small helpers ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _reap_commands() -> Iterator[None]:
    """`gateway` commands a failed test left running are killed and waited for."""
    yield
    Gateway.reap()


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start workers (spawn(config) waits for `worker_started`); any still running at the end is killed."""
    started: list[WorkerProcess] = []

    def start(config: Path, *, wait: bool = True, env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(config, ENV | (env or {}))
        started.append(worker)
        return worker.start(wait=wait)

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture
def sshd_server(tmp_path: Path) -> Iterator[sshd_support.Sshd]:
    """A real sshd of this test's own (tests stop and restart it)."""
    server = sshd_support.start(tmp_path / "sshd")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def partner() -> Iterator[FakePartner]:
    with FakePartner() as running:
        yield running


def folder_source(path: Path, name: str = "drop", **options: Any) -> dict[str, Any]:
    return {"type": "folder", "name": name, "kind": "stock", "path": str(path), "completion": "rename"} | options


def sftp_source(server: sshd_support.Sshd, remote: Path, name: str = "remote", **options: Any) -> dict[str, Any]:
    return {
        "type": "sftp",
        "name": name,
        "kind": "stock",
        "completion": "rename",
        "host": server.host,
        "port": server.port,
        "username": server.user,
        "private_key_file": str(server.user_key),
        "known_hosts": str(server.known_hosts),
        "remote_path": str(remote),
        "poll_seconds": 0.5,
        "connect_timeout": 2.0,
    } | options


def api(partner: FakePartner) -> dict[str, Any]:
    """The partner's API: ATS delivered to it, no feeds polled."""
    return {"base_url": partner.url, "token_env": TOKEN_ENV, "feeds": [], "deliver": ["ats"]}


def sftp_upload(server: sshd_support.Sshd, remote: Path, name: str, data: bytes) -> None:
    """Upload over SFTP under a temporary name (NAME.part), then rename into place."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        server.host,
        port=server.port,
        username=server.user,
        key_filename=str(server.user_key),
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )
    try:
        sftp = client.open_sftp()
        temporary = posixpath.join(str(remote), name + ".part")
        with sftp.open(temporary, "wb") as out:
            out.write(data)
        sftp.posix_rename(temporary, posixpath.join(str(remote), name))
        sftp.close()
    finally:
        client.close()


def delivered(partner: FakePartner, worker: WorkerProcess, expected: dict[str, int], timeout: float = 20) -> None:
    """Wait until the partner's ATS view is `expected` (the worker's last lines in the failure message)."""

    def seen() -> bool:
        if not worker.running():
            raise AssertionError(f"the worker exited\n{worker.tail()}")
        return partner.ats_view() == expected

    wait_until(
        seen,
        timeout,
        lambda: (
            f"the partner's view {partner.ats_view()} to be {expected}; requests: "
            f"{[str(r) for r in partner.requests[-5:]]}\n{worker.tail()}"
        ),
    )


def names(folder: Path) -> list[str]:
    """The files directly in a folder (not its archive/ and failed/ sub-folders)."""
    return sorted(p.name for p in folder.iterdir() if not p.is_dir()) if folder.is_dir() else []


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ledger(config: Path, partner: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = gateway_json(config, "ledger", "--partner", partner, "--json")
    return entries


def ats_of(config: Path, partner: str, *options: str) -> Gateway:
    """`gateway ats --partner P --json [OPTIONS]`, started."""
    return Gateway(config, "ats", "--partner", partner, "--json", *options)


def ats_view(call: Gateway) -> dict[str, int]:
    """SKU -> published ATS, from `gateway ats --json`."""
    return {row["sku"]: row["ats"] for row in call.json()}


def ats(config: Path, partner: str) -> dict[str, int]:
    """The store's published ATS of every SKU of the partner."""
    return ats_view(ats_of(config, partner))


def staged(config: Path, partner: str, source: str) -> list[Path]:
    """Files the worker copied into staging for that source (present while one is being applied)."""
    folder = config.parent / "var" / "staging" / partner / source
    return sorted(folder.glob("*.staged")) if folder.is_dir() else []


def wal_size(config: Path) -> int:
    wal = config.parent / "var" / "gateway.db-wal"
    return wal.stat().st_size if wal.exists() else 0


def mid_ingest(config: Path, partner: str, wal_before: int, source: str = "drop") -> bool:
    """A file is in staging and its transaction has written to the WAL: the worker is in the middle of it."""
    return bool(staged(config, partner, source)) and wal_size(config) > wal_before + (1 << 20)


# --- 1 and 8: the happy path, and `gateway status` against it -------------------------------------------------


def test_folder_and_sftp_files_are_applied_archived_delivered_and_shown_by_status(
    tmp_path: Path, spawn: Spawn, sshd_server: sshd_support.Sshd, partner: FakePartner
) -> None:
    """A file renamed into the watched folder and one uploaded over SFTP: applied, archived, ATS delivered;
    one run_id follows each item from pickup to delivery; `gateway status` shows the sources and the items."""
    drop_folder = tmp_path / "drop"
    remote = sshd_server.remote_folder()
    config = write_worker_config(
        tmp_path / "run",
        {
            "shop": {
                "stock_mode": "simple",
                "sources": [folder_source(drop_folder), sftp_source(sshd_server, remote)],
                "api": api(partner),
                "delivery": FAST_DELIVERY,
            }
        },
    )
    worker = spawn(config)
    local = stock_csv({"F1": 10, "F2": 4}, T1)
    uploaded = stock_csv({"S1": 7, "S2": 0}, T1)
    drop(drop_folder, "local.csv", local)
    sftp_upload(sshd_server, remote, "remote.csv", uploaded.encode())

    delivered(partner, worker, {"F1": 10, "F2": 4, "S1": 7, "S2": 0})
    worker.wait_log("file_archived", file="local.csv", source="drop")
    worker.wait_log("file_archived", file="remote.csv", source="remote")
    assert names(drop_folder) == []
    assert names(drop_folder / "archive") == ["local.csv"]
    assert (drop_folder / "archive" / "local.csv").read_text() == local
    assert names(remote) == []
    assert names(remote / "archive") == ["remote.csv"]
    assert (remote / "archive" / "remote.csv").read_text() == uploaded
    entries_call, ats_call = Gateway(config, "ledger", "--partner", "shop", "--json"), ats_of(config, "shop")
    status_call = Gateway(config, "status", "--json", "--health-url", f"http://127.0.0.1:{worker.health_port}")
    assert sorted((e["source"], e["outcome"], e["rows_applied"]) for e in entries_call.json()) == [
        ("drop:local.csv", "applied", 2),
        ("remote:remote.csv", "applied", 2),
    ]
    assert ats_view(ats_call) == {"F1": 10, "F2": 4, "S1": 7, "S2": 0}
    # one run_id follows each item: applied, archived, and named by the delivery that carried its values
    for source, file in (("drop", "local.csv"), ("remote", "remote.csv")):
        [applied] = worker.events("file_applied", source=f"{source}:{file}")
        run_id = applied["run_id"]
        assert worker.events("file_archived", file=file)[0]["run_id"] == run_id
        wait_until(
            lambda run_id=run_id: any(
                run_id in line.get("run_ids", []) for line in worker.events("delivery_attempt", outcome="delivered")
            ),
            10,
            f"a delivery_attempt line naming run {run_id}",
        )
    # every log line is structured: timestamp, level, event
    assert all({"timestamp", "level", "event"} <= line.keys() for line in worker.lines())

    status, ready = worker.readyz()
    assert status == 200, ready
    assert ready["ready"] is True

    summary = status_call.json()
    assert summary["worker"] == {"reachable": True, "ready": True, "error": None, "problems": []}
    sources = {(s["partner"], s["source"], s["type"]): s for s in summary["sources"]}
    assert set(sources) == {("shop", "drop", "folder"), ("shop", "remote", "sftp")}
    assert all(s["last_ok"] is not None and s["last_error"] is None for s in sources.values())
    [shop] = summary["partners"]
    assert shop["partner"] == "shop"
    assert shop["last_hour"] == [
        {"kind": "stock", "outcome": "applied", "items": 2, "rows_applied": 4, "rows_refused": 0}
    ]
    assert shop["outbox_depth"] == 0
    assert shop["dead_letters"] == 0

    assert worker.stop() == 0
    assert worker.events("worker_stopped")


# --- 2: SIGKILL in the middle of a large file --------------------------------------------------------------


def test_sigkill_during_a_large_file_then_restart_applies_it_exactly_once_as_a_clean_run_would(
    tmp_path: Path, spawn: Spawn
) -> None:
    """kill -9 while a 150k-row snapshot is being applied; the restarted worker applies it once, and the store
    holds the same ATS as a fresh store that took the same file with `gateway ingest`."""
    rows = 150_000
    big = big_stock_csv(tmp_path / "big.csv", rows)
    drop_folder = tmp_path / "drop"
    partners = {"bulk": {"stock_mode": "simple", "sources": [folder_source(drop_folder)]}}
    config = write_worker_config(tmp_path / "run", partners)
    clean = write_worker_config(tmp_path / "clean", {"bulk": {"stock_mode": "simple"}})
    # the clean run, alongside
    reference = Gateway(clean, "--quiet", "ingest", "--partner", "bulk", "--kind", "stock", str(big))
    worker = spawn(config)
    wal_before = wal_size(config)
    drop(drop_folder, "big.csv", big.read_bytes())
    wait_until(lambda: mid_ingest(config, "bulk", wal_before), 30, lambda: f"the ingest under way\n{worker.tail()}")
    worker.signal(signal.SIGKILL)
    assert worker.wait_exit(10) == -signal.SIGKILL
    assert not worker.events("file_applied"), "killed too late: the file was applied before the kill"
    assert names(drop_folder) == ["big.csv"]
    assert names(drop_folder / "archive") == names(drop_folder / "failed") == []

    restarted = spawn(config)
    reference.result()
    reference_ats = ats_of(clean, "bulk")  # while the restarted worker works
    restarted.wait_log("file_archived", timeout=60, file="big.csv")
    assert restarted.stop() == 0
    entries, mine = Gateway(config, "ledger", "--partner", "bulk", "--json"), ats_of(config, "bulk")
    assert names(drop_folder) == []
    assert sha256(drop_folder / "archive" / "big.csv") == sha256(big)
    assert staged(config, "bulk", "drop") == []
    assert [(e["source"], e["outcome"], e["rows_applied"]) for e in entries.json()] == [
        ("drop:big.csv", "applied", rows)
    ]
    applied = mine.result().stdout
    assert len(json.loads(applied)) == rows
    assert applied == reference_ats.result().stdout


# --- 3: SIGTERM in the middle of a file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "rows", "grace", "signals", "finishes"),
    [
        pytest.param("folder", 150_000, 0.3, 1, False, id="folder-grace-runs-out-the-file-rolls-back"),
        pytest.param("folder", 100_000, 30.0, 1, True, id="folder-grace-enough-the-file-finishes"),
        pytest.param("folder", 200_000, 30.0, 2, False, id="folder-a-second-signal-exits-at-once"),
        pytest.param("sftp", 200_000, 0.3, 1, False, id="sftp-grace-runs-out-the-file-rolls-back"),
    ],
)
def test_sigterm_during_a_file_exits_within_the_grace_leaving_it_whole_or_untouched(
    tmp_path: Path,
    spawn: Spawn,
    request: pytest.FixtureRequest,
    source: str,
    rows: int,
    grace: float,
    signals: int,
    finishes: bool,
) -> None:
    """SIGTERM while a big file is being applied: exit 0 within the grace period (a second signal: 130 at once);
    the file is applied once and archived, or left untouched where it was with nothing of it in the store, and
    the last log line says which; a restart applies it once."""
    big = big_stock_csv(tmp_path / "big.csv", rows)
    if source == "folder":
        drop_folder, name = tmp_path / "drop", "drop"
        sources = [folder_source(drop_folder)]
    else:  # the sshd's served folder, written on disk the way an uploader renames into place
        sshd_server: sshd_support.Sshd = request.getfixturevalue("sshd_server")
        drop_folder, name = sshd_server.remote_folder(), "remote"
        sources = [sftp_source(sshd_server, drop_folder)]
    config = write_worker_config(
        tmp_path / "run", {"bulk": {"stock_mode": "simple", "sources": sources}}, {"shutdown_grace": grace}
    )
    worker = spawn(config)
    wal_before = wal_size(config)
    drop(drop_folder, "big.csv", big.read_bytes())
    wait_until(
        lambda: mid_ingest(config, "bulk", wal_before, name), 30, lambda: f"the ingest under way\n{worker.tail()}"
    )
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    if signals == 2:
        worker.wait_log("worker_stopping")
        worker.signal(signal.SIGTERM)
    code = worker.wait_exit(grace + 30)
    took = time.monotonic() - signalled
    assert code == (0 if signals == 1 else 130)
    limit = grace + 2 if signals == 1 else 2
    assert took < limit, f"exit {took:.1f} s after the signal; the grace period is {grace} s\n{worker.tail()}"
    # the worker's last words match what happened
    last = worker.lines()[-1]
    assert last["event"] == ("worker_stopped" if signals == 1 else "worker_exit_now"), worker.tail()
    claims_rollback = "rolled_back" in last or signals == 2
    assert claims_rollback != finishes, worker.tail()

    first_last = ("--sku", "SKU00000000", "--sku", f"SKU{rows - 1:08d}")
    entries = Gateway(config, "ledger", "--partner", "bulk", "--json")
    stored = ats_of(config, "bulk", *(first_last if finishes else ()))  # every SKU held: none, when rolled back
    if finishes:  # the file in hand was finished: applied whole, archived
        assert names(drop_folder) == []
        assert sha256(drop_folder / "archive" / "big.csv") == sha256(big)
        assert [(e["source"], e["outcome"], e["rows_applied"]) for e in entries.json()] == [
            (f"{name}:big.csv", "applied", rows)
        ]
        assert ats_view(stored) == {"SKU00000000": 0, f"SKU{rows - 1:08d}": ((rows - 1) * 7919) % 500}
        return
    # the file's transaction rolled back: nothing of it anywhere but where it was dropped, as it was
    assert not worker.events("file_applied"), worker.tail()
    assert names(drop_folder) == ["big.csv"]
    assert names(drop_folder / "archive") == names(drop_folder / "failed") == []
    assert sha256(drop_folder / "big.csv") == sha256(big)
    assert entries.json() == []
    assert ats_view(stored) == {}
    if signals == 2 or source == "sftp":
        return  # taken up again after a restart: shown once, below

    restarted = spawn(config)
    restarted.wait_log("file_archived", timeout=30, file="big.csv")
    assert restarted.stop() == 0
    assert names(drop_folder) == []
    assert names(drop_folder / "archive") == ["big.csv"]
    entries = Gateway(config, "ledger", "--partner", "bulk", "--json")
    assert [(e["source"], e["outcome"], e["rows_applied"]) for e in entries.json()] == [
        ("drop:big.csv", "applied", rows)
    ]


def test_sigterm_while_a_delivery_hangs_exits_0_within_the_grace(
    tmp_path: Path, spawn: Spawn, partner: FakePartner
) -> None:
    """SIGTERM while a batch waits on a partner that does not answer: exit 0 within the grace period, the batch
    left in the outbox for the next run."""
    drop_folder = tmp_path / "drop"
    config = write_worker_config(
        tmp_path / "run",
        {
            "shop": {
                "stock_mode": "simple",
                "sources": [folder_source(drop_folder)],
                "api": api(partner),
                "delivery": FAST_DELIVERY,
            }
        },
        {"shutdown_grace": 1.0},
    )
    partner.script(Slow(30))  # outlasts the grace period; the partner's stop() ends it
    worker = spawn(config)
    drop(drop_folder, "a.csv", stock_csv({"A": 1}, T1))
    partner.wait_for(lambda p: any(r.outcome == "slow" for r in p.requests), timeout=10)
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit(3.0) == 0, worker.tail()
    assert time.monotonic() - signalled < 3.0
    assert worker.lines()[-1]["event"] == "worker_stopped", worker.tail()

    outbox = gateway_json(config, "outbox", "--partner", "shop", "--json")
    assert [(m["kind"], m["key"], m["value"], m["state"]) for m in outbox["messages"]] == [("ats", "A", 1, "pending")]


def test_status_and_a_second_worker_answer_at_once_while_the_worker_applies_a_big_file(
    tmp_path: Path, spawn: Spawn
) -> None:
    """While the worker holds a big file's transaction, `gateway status` answers and a second `gateway run` is
    refused (exit 2, naming the worker) without waiting for that transaction to end."""
    rows = 300_000
    big = big_stock_csv(tmp_path / "big.csv", rows)
    drop_folder = tmp_path / "drop"
    config = write_worker_config(
        tmp_path / "run", {"bulk": {"stock_mode": "simple", "sources": [folder_source(drop_folder)]}}
    )
    worker = spawn(config)
    wal_before = wal_size(config)
    drop(drop_folder, "big.csv", big.read_bytes())
    wait_until(lambda: mid_ingest(config, "bulk", wal_before), 30, lambda: f"the ingest under way\n{worker.tail()}")
    status = Gateway(config, "status", "--json", "--health-url", f"http://127.0.0.1:{worker.health_port}")
    second = spawn(config, wait=False)
    code = second.wait_exit(60)
    summary = status.result(expect=None)
    waited = bool(worker.events("file_applied"))
    assert code == 2
    assert f"another worker (pid {worker.pid}) runs on the SQLite store" in second.stderr(), second.stderr()
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["worker"]["reachable"] is True
    assert not waited, "the second worker and `gateway status` waited for the worker's transaction to end"


# --- 4: the partner down for a while --------------------------------------------------------------------------


def test_a_partner_down_for_a_while_gets_everything_queued_latest_values_only_when_back(
    tmp_path: Path, spawn: Spawn, partner: FakePartner
) -> None:
    """The partner goes away; three snapshots change the same SKUs meanwhile (the outbox depth shows on /metrics);
    when it is back on the same port, it gets each SKU once, at its latest value, and its view equals the store."""
    drop_folder = tmp_path / "drop"
    config = write_worker_config(
        tmp_path / "run",
        {
            "shop": {
                "stock_mode": "simple",
                "sources": [folder_source(drop_folder)],
                "api": api(partner),
                "delivery": FAST_DELIVERY,
            }
        },
        {"delivery_interval": 0.2},
    )
    worker = spawn(config)
    drop(drop_folder, "s1.csv", stock_csv({"A": 1, "B": 2, "C": 3}, T1))
    delivered(partner, worker, {"A": 1, "B": 2, "C": 3})
    before = len(partner.items("ats"))

    partner.stop()
    snapshots = [
        ("s2.csv", {"A": 10, "B": 20, "C": 30}, T2),
        ("s3.csv", {"A": 11, "B": 0, "C": 31}, T3),
        ("s4.csv", {"A": 12, "B": 5}, T4),  # C keeps its level (absent = keep)
    ]
    for name, levels, as_of in snapshots:
        drop(drop_folder, name, stock_csv(levels, as_of))
        worker.wait_log("file_archived", file=name)
    worker.wait_log("delivery_attempt", outcome="failed")  # it tried, and the partner was not there
    latest = {"A": 12, "B": 5, "C": 31}
    assert ats(config, "shop") == latest
    depth = worker.metrics()
    assert depth['gateway_outbox_depth{kind="ats",partner="shop"}'] == 3.0, depth
    assert depth['gateway_outbox_oldest_seconds{partner="shop"}'] > 0
    assert partner.ats_view() == {"A": 1, "B": 2, "C": 3}

    partner.start()
    delivered(partner, worker, latest)
    since = partner.items("ats")[before:]
    assert sorted((item["sku"], item["ats"]) for item in since) == sorted(latest.items()), "latest values only"
    wait_until(
        lambda: not any(k.startswith("gateway_outbox_depth{") for k in worker.metrics()),
        10,
        "the outbox empty on /metrics",
    )
    outbox = gateway_json(config, "outbox", "--partner", "shop", "--json")
    assert [c for c in outbox["counts"] if c["state"] != "delivered"] == []
    assert outbox["messages"] == []
    assert worker.stop() == 0


# --- 5: a malformed file ------------------------------------------------------------------------------------


def test_a_malformed_file_goes_to_failed_with_its_report_and_the_worker_keeps_going(
    tmp_path: Path, spawn: Spawn
) -> None:
    """fixtures/stock/bad_quantity.csv: failed/ with NAME.error.json, a file_rejected line naming the reason,
    counted on /metrics; the next good file is applied."""
    drop_folder = tmp_path / "drop"
    config = write_worker_config(
        tmp_path / "run", {"shop": {"stock_mode": "simple", "sources": [folder_source(drop_folder)]}}
    )
    worker = spawn(config)
    drop(drop_folder, "bad.csv", (FIXTURES / "stock" / "bad_quantity.csv").read_bytes())
    rejected = worker.wait_log("file_rejected", source="drop:bad.csv")
    assert "line 3, column quantity" in rejected["reason"], rejected
    assert rejected["problems"] == 2
    worker.wait_log("file_moved_to_failed", file="bad.csv")
    assert names(drop_folder) == []
    assert names(drop_folder / "archive") == []
    assert names(drop_folder / "failed") == ["bad.csv", "bad.csv.error.json"]
    report = json.loads((drop_folder / "failed" / "bad.csv.error.json").read_text())
    assert report["outcome"] == "rejected"
    assert [(p["line"], p["column"]) for p in report["problems"]] == [(3, "quantity"), (4, "quantity")]
    assert report["file"] == "bad.csv"

    assert worker.running()
    drop(drop_folder, "good.csv", (FIXTURES / "stock" / "good.csv").read_bytes())
    worker.wait_log("file_archived", file="good.csv")
    metrics = worker.metrics()
    assert metrics['gateway_items_total{kind="stock",outcome="rejected",partner="shop"}'] == 1.0
    assert metrics['gateway_items_total{kind="stock",outcome="applied",partner="shop"}'] == 1.0
    assert metrics['gateway_rows_applied_total{kind="stock",partner="shop"}'] == 3.0
    entries = ledger(config, "shop")
    assert sorted((e["source"], e["outcome"]) for e in entries) == [
        ("drop:bad.csv", "rejected"),
        ("drop:good.csv", "applied"),
    ]
    assert worker.stop() == 0


# --- 6: readiness follows the SFTP server ----------------------------------------------------------------------


def test_readyz_is_unready_naming_the_sftp_source_while_sshd_is_down_and_ready_when_it_returns(
    tmp_path: Path, spawn: Spawn, sshd_server: sshd_support.Sshd
) -> None:
    """A source whose polls fail is stale: /readyz answers 503 naming it (at once when no poll ever succeeded,
    after max(interval x staleness_factor, 10 s) since the last success otherwise), 200 again once it polls."""
    remote = sshd_server.remote_folder()
    config = write_worker_config(
        tmp_path / "run",
        {"shop": {"stock_mode": "simple", "sources": [sftp_source(sshd_server, remote, poll_seconds=0.5)]}},
        {"staleness_factor": 1},
    )
    sshd_server.stop()
    worker = spawn(config)

    def readiness(expected: int) -> Callable[[], dict[str, Any] | None]:
        def check() -> dict[str, Any] | None:
            status, body = worker.readyz()
            return body if status == expected else None

        return check

    down = wait_until(readiness(503), 15, lambda: f"/readyz 503\n{worker.tail()}")
    assert down["ready"] is False
    [problem] = down["problems"]
    assert problem.startswith("source shop/remote: no successful poll"), problem
    [source] = down["sources"]
    assert (source["source"], source["type"], source["stale"], source["last_ok"]) == ("remote", "sftp", True, None)
    assert source["last_error"]
    worker.wait_log("source_poll_failed", source="remote")
    assert worker.get("/healthz") == (200, b'{"status": "alive"}')

    restart_sshd(sshd_server)
    up = wait_until(readiness(200), 15, lambda: f"/readyz 200\n{worker.tail()}")
    assert up["ready"] is True
    assert up["problems"] == []
    [source] = up["sources"]
    assert source["last_ok"] is not None
    assert source["stale"] is False
    metrics = worker.metrics()
    assert metrics['gateway_source_seconds_since_success{partner="shop",source="remote"}'] < 10
    assert worker.stop() == 0


# --- 7: one worker per SQLite store; SIGHUP ----------------------------------------------------------------


def test_a_second_worker_is_refused_and_sighup_applies_a_good_config_or_keeps_the_running_one(
    tmp_path: Path, spawn: Spawn
) -> None:
    """A second `gateway run` on the same SQLite store exits 2 naming the first; SIGHUP with a broken config
    logs config_reload_refused and keeps working; SIGHUP with a new partner folder starts watching it."""
    shop_folder, other_folder = tmp_path / "shop", tmp_path / "other"
    shop = {"stock_mode": "simple", "sources": [folder_source(shop_folder)]}
    config = write_worker_config(tmp_path / "run", {"shop": shop})
    first = spawn(config)

    second = spawn(config, wait=False)
    assert second.wait_exit(20) == 2
    assert f"another worker (pid {first.pid}) runs on the SQLite store" in second.stderr()
    assert first.running()

    good = config.read_text()
    config.write_text(good.replace('stock_mode = "simple"', 'stock_mode = "simpel"'))
    first.signal(signal.SIGHUP)
    refused = first.wait_log("config_reload_refused")
    assert any(problem.startswith("partners.shop.stock_mode") for problem in refused["problems"]), refused
    drop(shop_folder, "a.csv", stock_csv({"A": 1}, T1))
    first.wait_log("file_archived", file="a.csv", partner="shop")
    assert not first.events("config_reloaded")

    other = {"stock_mode": "advanced", "sources": [folder_source(other_folder)]}
    write_worker_config(tmp_path / "run", {"shop": shop, "other": other})
    first.signal(signal.SIGHUP)
    reloaded = first.wait_log("config_reloaded")
    assert reloaded["partners"] == ["other", "shop"]
    drop(other_folder, "b.csv", stock_csv({"B": 2}, T1))
    assert first.wait_log("file_archived", file="b.csv", partner="other")["outcome"] == "applied"
    drop(shop_folder, "c.csv", stock_csv({"A": 3}, T2))  # the old partner is still watched
    assert first.wait_log("file_archived", file="c.csv", partner="shop")["outcome"] == "applied"
    assert first.stop() == 0
