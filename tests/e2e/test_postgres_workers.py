"""Several `gateway run` workers sharing one PostgreSQL store, checked from the outside.

Each worker is a real process with a configuration of its own (its own folder, so its own staging, a free health
port and a free platform API port) naming the same PostgreSQL schema, the same drop folders and the same partner
(a real HTTP server, tests.support.partner). Clients place orders over the platform API of the workers while
files arrive in the shared drop folders; one worker is SIGKILLed half way. Nothing waits a fixed time: every
wait polls a condition with a deadline.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from sqlalchemy import select

from gateway import bootstrap, settings
from gateway.domain.errors import Refusal
from gateway.domain.orders import RequestedLine
from gateway.formats.rows import Kind
from gateway.store import schema
from tests.conftest import FakeClock, postgres_base_url, postgres_schema, toml_value, write_config
from tests.support.partner import FakePartner
from tests.support.worker import WORKER_DEFAULTS, Gateway, WorkerProcess, drop, wait_until

PARTNER = "brand"
PARTNER_TOKEN_ENV = "E2E_PARTNER_TOKEN"  # noqa: S105 - the name of the variable, not a secret
PLATFORM_TOKEN_ENV = "E2E_PLATFORM_TOKEN"  # noqa: S105
PLATFORM_TOKEN = "platform-token-0123456789abcdef"  # noqa: S105 - a test token
ENV = {PARTNER_TOKEN_ENV: "partner-token", PLATFORM_TOKEN_ENV: PLATFORM_TOKEN}
API_TOML = f"""
[api]
enabled = true
port = 0

[[api.tokens]]
name = "platform"
token_env = "{PLATFORM_TOKEN_ENV}"
partners = ["*"]
"""
# delivery that retries soon; the shortest lease the settings allow with these timeouts (2 x 2.5 s + 10 s): a
# batch claimed by the killed worker goes again 15 s after its claim
API_TIMEOUTS = {"connect_timeout": 0.5, "read_timeout": 2.0}
DELIVERY = {"retries": 1, "backoff_initial": 0.05, "backoff_max": 0.5, "breaker_pause": 0.5, "lease_seconds": 15.0}
KINDS = ("stock", "orders", "confirmations", "caps")
OPEN = ("pending", "confirmed", "invoicing")  # the statuses that allocate in advanced mode


# --- fixtures and small helpers ------------------------------------------------------------------------------


@pytest.fixture
def store_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL server (skipped without one), dropped afterwards."""
    with postgres_schema(postgres_base_url()) as url:
        yield url


@pytest.fixture
def partner() -> Iterator[FakePartner]:
    with FakePartner() as running:
        yield running


Spawn = Callable[[list[Path]], list[WorkerProcess]]


@pytest.fixture
def spawn(store_url: str) -> Iterator[Spawn]:
    """Start workers all at once and wait for each one's `worker_started`; every one is killed at the end (before
    the schema is dropped: `store_url` is set up first, so torn down last)."""
    started: list[WorkerProcess] = []

    def start(configs: list[Path]) -> list[WorkerProcess]:
        fleet = [WorkerProcess(config, ENV, name=config.parent.name) for config in configs]
        started.extend(fleet)
        for worker in fleet:
            worker.start(wait=False)
        for worker in fleet:
            # imports and migrations of several processes on two cores: a generous deadline
            line = worker.wait_log("worker_started", timeout=90)
            worker.health_port = line["health_port"]
        return fleet

    yield start
    for worker in started:
        worker.kill()
    Gateway.reap()


def worker_config(folder: Path, name: str, store_url: str, partners: dict[str, dict[str, Any]]) -> Path:
    """`folder/gateway.toml`: these partners on the shared store, `[worker] name`, the platform API on a free port.
    Relative paths (staging) are relative to `folder`, so each worker stages its files in a folder of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    path = write_config(folder, partners, store_url)
    options = WORKER_DEFAULTS | {"name": name}
    table = "\n".join(f"{key} = {toml_value(value)}" for key, value in options.items())
    path.write_text(path.read_text(encoding="utf-8") + f"\n[worker]\n{table}\n{API_TOML}", encoding="utf-8")
    return path


def folder_source(path: Path, kind: str, **options: Any) -> dict[str, Any]:
    """A drop folder named after its kind; a quick rescan, so a file that arrived while the worker that died held
    the source is taken by another within a second (its watchers saw the event, found the source held, and left
    the file to the holder)."""
    return {
        "type": "folder",
        "name": kind,
        "kind": kind,
        "path": str(path),
        "completion": "rename",
        "rescan_seconds": 1.0,
    } | options


def sha256(data: str) -> str:
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def store_engine(url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)


def tails(workers: list[WorkerProcess]) -> str:
    return "\n".join(f"--- {w.config.parent.name} (pid {w.pid}):\n{w.tail(8)}" for w in workers)


# --- the inputs -----------------------------------------------------------------------------------------------

SKUS = [f"S{i:02d}" for i in range(20)]
T0, T1, T2, T3, T4 = (f"2026-03-01T0{h}:00:00Z" for h in range(5))
# Levels never go down from one snapshot to the next (the stale one is skipped whole): the stock only grows and
# closing or cancelling orders only frees units, so the ATS of a SKU can only fall through placements. At the end,
# stock >= allocation then says that no placement ever took more than there was.
LEVELS = {
    T1: {sku: 3 + (i * 7) % 5 for i, sku in enumerate(SKUS)},
    T2: {sku: 3 + (i * 7) % 5 + i % 3 for i, sku in enumerate(SKUS)},
    T3: {sku: 4 + (i * 7) % 5 + i % 3 for i, sku in enumerate(SKUS)},
    T4: {sku: 4 + (i * 7) % 5 + i % 3 + (2 if i % 4 == 0 else 0) for i, sku in enumerate(SKUS)},
}
STALE = {sku: 0 for sku in SKUS}  # as of T0: older than every level it meets, skipped

PARIS, LYON = "paris", "lyon"
CHANNELS: list[tuple[str, str] | None] = [None, None, (PARIS, "c1"), (PARIS, "c2"), (LYON, "c1")]
# (sku, assembly, collection or "*", max or None): the first file before any order, the second half way (it only
# raises caps, so what was ordered before it stays within them)
CAPS_1 = [
    *((sku, PARIS, "*", 3) for sku in SKUS[:8]),
    ("S00", PARIS, "c2", None),
    ("S01", PARIS, "c2", None),
    *((sku, LYON, "c1", 2) for sku in SKUS[8:14]),
]
CAPS_2 = [(sku, LYON, "c1", 4) for sku in SKUS[8:11]]


def effective_cap(sku: str, assembly: str, collection: str) -> int | None:
    """The cap in force in a collection after both cap files (DOMAIN.md: its own setting, else the default)."""
    own: dict[tuple[str, str, str], int | None] = {}
    for row_sku, row_assembly, row_collection, limit in CAPS_1 + CAPS_2:
        own[(row_sku, row_assembly, row_collection)] = limit
    if (sku, assembly, collection) in own:
        return own[(sku, assembly, collection)]
    return own.get((sku, assembly, "*"))


def stock_file(levels: dict[str, int], as_of: str) -> str:
    return "sku,quantity,as_of\n" + "".join(f"{sku},{quantity},{as_of}\n" for sku, quantity in levels.items())


def caps_file(rows: list[tuple[str, str, str, int | None]]) -> str:
    body = "".join(f"{s},{a},{c},{'none' if m is None else m}\n" for s, a, c, m in rows)
    return "sku,assembly,collection,max\n" + body


@dataclass
class Placement:
    """One order a client places, and the answer it got in the end (after retries on other workers)."""

    order_id: str
    lines: list[tuple[str, int]]
    channel: tuple[str, str] | None
    status: int | None = None
    answer: dict[str, Any] = field(default_factory=dict)
    tries: int = 0

    @property
    def key(self) -> str:
        return f"key-{self.order_id}"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "order_id": self.order_id,
            "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in self.lines],
        }
        if self.channel is not None:
            body["assembly"], body["collection"] = self.channel
        return body

    def requested(self) -> list[RequestedLine]:
        assembly, collection = self.channel if self.channel is not None else (None, None)
        return [RequestedLine(sku, quantity, assembly, collection) for sku, quantity in self.lines]


def orders_of(client: int, count: int, rng: random.Random) -> list[Placement]:
    """Small orders, one or two SKUs; channel orders favour the capped SKUs."""
    placements = []
    for number in range(count):
        channel = rng.choice(CHANNELS)
        pool = SKUS if channel is None else (SKUS[:10] if channel[0] == PARIS else SKUS[6:16])
        skus = rng.sample(pool, rng.choice([1, 1, 2]))
        lines = [(sku, rng.choice([1, 1, 2])) for sku in sorted(skus)]
        placements.append(Placement(f"O-{client}-{number:03d}", lines, channel))
    return placements


class Fleet:
    """The platform API of each worker, and which ones were killed (a client goes to the next live one)."""

    def __init__(self, ports: list[int]) -> None:
        self.urls = [f"http://127.0.0.1:{port}/v1/partners/{PARTNER}/orders" for port in ports]
        self.dead: set[int] = set()
        self.lock = threading.Lock()
        self.done = 0

    def live(self) -> list[str]:
        with self.lock:
            return [url for index, url in enumerate(self.urls) if index not in self.dead]

    def finished(self) -> None:
        with self.lock:
            self.done += 1


def place_all(fleet: Fleet, client: int, placements: list[Placement]) -> None:
    """Place each order, one after the other: a connection refused or broken (a dead worker) or a busy store is
    tried again, with the same Idempotency-Key and body, on the next live worker, until a final answer."""
    headers = {"Authorization": f"Bearer {PLATFORM_TOKEN}"}
    with httpx.Client(timeout=30.0) as http:
        for placement in placements:
            deadline = time.monotonic() + 60
            while placement.status is None:
                assert time.monotonic() < deadline, f"{placement.order_id}: no answer within 60 s"
                live = fleet.live()
                url = live[(client + placement.tries) % len(live)]
                placement.tries += 1
                try:
                    answer = http.post(url, json=placement.body(), headers=headers | {"Idempotency-Key": placement.key})
                except httpx.TransportError:
                    continue
                if answer.status_code == 503:
                    continue
                placement.status, placement.answer = answer.status_code, answer.json()
            fleet.finished()


@dataclass
class Acks:
    """The partner's acknowledgements: status moves and confirmed quantities for orders it knows were placed."""

    rng: random.Random
    status: dict[str, str] = field(default_factory=dict)  # order -> the status the files moved it to
    confirmed_files: int = 0

    def status_file(self, accepted: list[Placement]) -> str | None:
        """Move some orders forward (never backwards: each file is legal after the ones before it)."""
        moves = {
            "pending": [("confirmed", 0.35), ("cancelled", 0.15), ("closed", 0.05)],
            "confirmed": [("invoicing", 0.5), ("closed", 0.2)],
            "invoicing": [("closed", 0.7)],
        }
        rows = []
        for placement in accepted:
            current = self.status.setdefault(placement.order_id, "pending")
            draw, threshold = self.rng.random(), 0.0
            for target, chance in moves.get(current, []):
                threshold += chance
                if draw < threshold:
                    self.status[placement.order_id] = target
                    rows.extend(f"{placement.order_id},{sku},{qty},{target}\n" for sku, qty in placement.lines)
                    break
        return "order_id,sku,quantity,status\n" + "".join(rows) if rows else None

    def confirmations_file(self, accepted: list[Placement]) -> str | None:
        """Confirmed quantities for some lines of orders the partner confirmed (a later file replaces some)."""
        self.confirmed_files += 1
        at = f"2026-03-02T0{self.confirmed_files}:00:00Z"
        rows = [
            f"{placement.order_id},{sku},{max(0, qty - self.rng.choice([0, 1]))},{at}\n"
            for placement in accepted
            if self.status.get(placement.order_id) in ("confirmed", "invoicing", "closed") and self.rng.random() < 0.5
            for sku, qty in placement.lines
        ]
        return "order_id,sku,confirmed_quantity,confirmed_at\n" + "".join(rows) if rows else None


# --- what the store holds ---------------------------------------------------------------------------------------


def store_state(engine: sqlalchemy.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the inputs decide, in a form two stores can be compared by: ids and instants the store makes
    itself (ledger and confirmation ids, created_at, updated_at, received_at, finished_at) are left out (a replay
    made at another time by one process makes others); a stock row's `set_by` (a ledger id) is named by the file.
    """
    g, s, o, line, c, k, h, x = (
        schema.ingest_ledger,
        schema.stock,
        schema.orders,
        schema.order_lines,
        schema.confirmations,
        schema.caps,
        schema.channels,
        schema.outbox,
    )
    with engine.connect() as db:
        ledger = db.execute(select(g.c.id, g.c.kind, g.c.source, g.c.sha256, g.c.outcome, *_counts(g))).all()
        named = {row.id: row.source for row in ledger}
        order_messages = []
        for row in db.execute(
            select(x.c.kind, x.c.key, x.c.payload).where(x.c.kind.in_(["order_export", "order_closed"]))
        ):
            body = json.loads(row.payload)
            del body["updated_at"]  # the instant of the status move
            order_messages.append((row.kind, row.key, json.dumps(body, sort_keys=True)))
        return {
            "applied": sorted(
                (r.kind, r.source, r.sha256, r.rows_applied, r.rows_skipped, r.rows_refused)
                for r in ledger
                if r.outcome == "applied"
            ),
            "stock": sorted(
                (r.sku, r.quantity, r.as_of, r.allocated, r.published, r.last_moved_at, named.get(r.set_by))
                for r in db.execute(select(s))
            ),
            "orders": sorted(tuple(r) for r in db.execute(select(o.c.order_id, o.c.status))),
            "lines": sorted(
                tuple(r)
                for r in db.execute(
                    select(
                        line.c.order_id,
                        line.c.sku,
                        line.c.quantity,
                        line.c.confirmed_quantity,
                        line.c.confirmed_at,
                        line.c.assembly,
                        line.c.collection,
                    )
                )
            ),
            "confirmations": sorted(
                tuple(r)
                for r in db.execute(
                    select(c.c.order_id, c.c.sku, c.c.confirmed_quantity, c.c.confirmed_at, c.c.in_force)
                )
            ),
            "caps": sorted(tuple(r) for r in db.execute(select(k.c.sku, k.c.assembly, k.c.collection, k.c.max_units))),
            "channels": sorted(
                tuple(r) for r in db.execute(select(h.c.sku, h.c.assembly, h.c.collection, h.c.ordered, h.c.published))
            ),
            "order_messages": sorted(order_messages),
        }


def _counts(table: sqlalchemy.Table) -> list[sqlalchemy.Column[Any]]:
    return [table.c.rows_applied, table.c.rows_skipped, table.c.rows_refused]


def differences(mine: dict[str, list[tuple[Any, ...]]], other: dict[str, list[tuple[Any, ...]]]) -> str:
    """What differs, table by table (rows only in one, rows only in the other)."""
    parts = []
    for table in mine:
        if mine[table] != other[table]:
            only_mine = sorted(set(mine[table]) - set(other[table]))[:10]
            only_other = sorted(set(other[table]) - set(mine[table]))[:10]
            parts.append(f"{table}: only in the shared store {only_mine}; only in the replay {only_other}")
    return "\n".join(parts)


