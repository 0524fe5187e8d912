"""Store.hold_commits: a worker out of its grace period lets no item in hand commit while the process leaves.

Without it, an item finishing in the half second the worker takes to stop its health server and close the store
was committed after the worker had decided to say it rolled back (seen under load in
tests/e2e/test_worker.py's grace test). The scenario runs in a child process that leaves with os._exit, as the
worker does, so the store is looked at exactly as a worker's exit leaves it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.store.records import StockRecord
from tests.conftest import AppFactory

pytestmark = pytest.mark.both_stores

CHILD = """
import os, sys, threading
from gateway.store.records import StockRecord
from gateway.store.sql.store import SqlStore

store = SqlStore.open(sys.argv[1])
with store.read() as tx:
    partner = tx.partners.id_of("p")

def put(sku, inside=None, proceed=None):
    with store.write() as tx:
        tx.stock.put(partner, [StockRecord(sku, 5, 1)], 2)
        if inside is not None:
            inside.set()
            proceed.wait()

put("BEFORE")  # committed before the hold: not counted
inside, proceed = threading.Event(), threading.Event()
held = threading.Thread(target=put, args=("HELD", inside, proceed), daemon=True)
held.start()
assert inside.wait(30)
print("open", store.hold_commits(), flush=True)
proceed.set()  # the item reaches its commit now, after the hold
held.join(timeout=1.0)
print("still waiting", held.is_alive(), flush=True)
os._exit(0)
"""


def test_a_write_open_when_commits_are_held_never_commits_and_is_counted(make_app: AppFactory, store_url: str) -> None:
    """The hold counts the one open write; that write, reaching its commit afterwards, waits, and the process
    leaves with it uncommitted: the store holds what committed before the hold and nothing of the held write."""
    app = make_app(p={"stock_mode": "simple"})
    app.close()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, store_url], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["open 1", "still waiting True"], done.stderr
    app = make_app(p={"stock_mode": "simple"})
    with app.store.read() as tx:
        held = tx.stock.versions(tx.partners.id_of("p"), ["BEFORE", "HELD"])
    assert [None if v is None else v[0] for v in held] == ["BEFORE", None]


def test_holding_commits_with_no_write_open_counts_none(make_app: AppFactory) -> None:
    """Nothing being written: 0, which the worker reports as work unfinished but nothing rolled back."""
    app = make_app(p={"stock_mode": "simple"})
    with app.store.write() as tx:
        tx.stock.put(tx.partners.id_of("p"), [StockRecord("S", 1, 1)], 2)
    assert app.store.hold_commits() == 0
