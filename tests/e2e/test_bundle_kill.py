"""A real `gateway ingest --bundle` process killed with SIGKILL in the middle of a large bundle: the store holds
nothing of it (the members applied before the kill included), and running it again applies it once."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from gateway import bootstrap, settings
from tests.conftest import write_config
from tests.e2e.test_cli import Cli
from tests.integration.helpers import contents
from tests.support.worker import GATEWAY, big_stock_csv, environment, wait_until

ROWS = 120_000
LAST = 250_000  # the member killed: some seconds of work, far more than the test takes to see it start and kill
K = "K-1"


class Logged:
    """A process's stderr read line by line on a thread of its own, its JSON log events kept."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.events: list[dict[str, object]] = []
        self.other: list[str] = []
        assert process.stderr is not None
        self._thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.other.append(line)

    def has(self, event: str, **fields: object) -> bool:
        return any(e.get("event") == event and fields.items() <= e.items() for e in list(self.events))

    def join(self) -> None:
        self._thread.join(timeout=10)


def store_of(config: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, the ledger too."""
    app = bootstrap.build(settings.load(config, environ={}))
    try:
        return contents(app, skip=())
    finally:
        app.close()


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_bundle_leaves_nothing_and_a_second_run_applies_it_once(tmp_path: Path) -> None:
    """Members: a 120k-row snapshot, the closing of an order, a 250k-row snapshot. Killed once the third
    member is under way (the first two applied inside the open transaction): the store is exactly as before. Run
    again, the bundle applies once (its three members and its own entry); a third run is a duplicate."""
    config = write_config(tmp_path, {"bulk": {"stock_mode": "advanced"}})
    cli = Cli(config)
    cli("stock", "set", "--partner", "bulk", "--sku", K, "--quantity", "10", "--as-of", "2019-06-25T12:00:00Z")
    cli("order", "place", "--partner", "bulk", "--order-id", "O-1", "--line", f"{K}:5")
    cli("order", "set-status", "--partner", "bulk", "--order-id", "O-1", "--status", "invoicing")
    assert cli.ats("bulk", K)["ats"] == 5
    folder = tmp_path / "bundle"
    folder.mkdir()
    big_stock_csv(folder / "first.csv", ROWS, as_of="2019-06-26T12:00:00Z")
    with (folder / "first.csv").open("a", encoding="utf-8") as out:
        out.write(f"{K},5,2019-06-26T12:00:00Z\n")
    (folder / "close.csv").write_text("order_id,status\nO-1,closed\n", encoding="utf-8")
    big_stock_csv(folder / "second.csv", LAST, as_of="2019-06-27T12:00:00Z")
    manifest = folder / "day.bundle.csv"
    manifest.write_text("kind,file\nstock,first.csv\nacknowledgements,close.csv\nstock,second.csv\n", encoding="utf-8")
    before = store_of(config)
    command = [*GATEWAY, "--config", str(config), "ingest", "--partner", "bulk", "--bundle", str(manifest)]

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())
    logged = Logged(process)
    try:
        wait_until(
            lambda: logged.has("bundle_member_applying", member=3) or process.poll() is not None,
            120,
            "the third member under way",
        )
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
        logged.join()
    assert logged.has("bundle_member_applying", member=2), logged.other
    assert not logged.has("bundle_applied"), "killed too late: the bundle committed before the kill"
    assert store_of(config) == before  # nothing of the bundle: not its ledger entries, not its first two members

    done = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"applied a bundle of 3 file(s): {ROWS + 2 + LAST} row(s)" in done.stdout
    entries = json.loads(cli("ledger", "--partner", "bulk", "--json").stdout)
    assert [(e["kind"], e["outcome"]) for e in entries] == [
        ("stock", "bundled"),
        ("acknowledgements", "bundled"),
        ("stock", "bundled"),
        ("bundle", "applied"),
    ]
    assert (cli.ats("bulk", K)["stock"], cli.ats("bulk", K)["allocated"], cli.ats("bulk", K)["ats"]) == (5, 0, 5)
    after = store_of(config)
    again = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=300, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "duplicate of ledger entry" in again.stdout
    assert {k: v for k, v in store_of(config).items() if k != "ingest_ledger"} == {
        k: v for k, v in after.items() if k != "ingest_ledger"
    }
