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
KINDS_OF_ORDERS = ("order_export", "order_closed")


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
                placement.answer = answer.json()
                placement.status = answer.status_code  # last: another thread reads a status as a final answer
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
    for table, rows in mine.items():
        if rows != other[table]:
            only_mine = sorted(set(rows) - set(other[table]), key=repr)[:10]
            only_other = sorted(set(other[table]) - set(rows), key=repr)[:10]
            parts.append(f"{table}: only in the shared store {only_mine}; only in the replay {only_other}")
    return "\n".join(parts)


# --- 1: four workers, eight clients, a kill -----------------------------------------------------------------------


class Scenario:
    """The shared drop folders, the workers, and every file dropped so far."""

    def __init__(self, drops: dict[str, Path], workers: list[WorkerProcess]) -> None:
        self.drops = drops
        self.workers = workers
        self.dropped: list[tuple[str, str, str]] = []  # (source, file, content)
        self.killed: set[int] = set()

    def survivors(self) -> list[WorkerProcess]:
        return [w for index, w in enumerate(self.workers) if index not in self.killed]

    def put(self, kind: str, name: str, content: str | None) -> None:
        """Drop a file into the source of its kind (nothing when there is nothing to say)."""
        if content is not None:
            drop(self.drops[kind], name, content)
            self.dropped.append((kind, name, content))

    def taken(self, kind: str, name: str) -> bool:
        folder = self.drops[kind]
        moved = (folder / "archive" / name).exists() or (folder / "failed" / name).exists()
        return moved and not (folder / name).exists()

    def wait_taken(self, timeout: float) -> None:
        """Every file dropped so far archived (or failed)."""
        wait_until(
            lambda: all(self.taken(kind, name) for kind, name, _ in self.dropped),
            timeout,
            lambda: (
                f"every file taken: left {[n for k, n, _ in self.dropped if not self.taken(k, n)]}\n"
                + tails(self.workers)
            ),
        )

    def wait_placed(self, fleet: Fleet, count: float, futures: list[Future[None]]) -> None:
        """At least `count` placements answered (a client that failed fails the test at once)."""

        def reached() -> bool:
            failed = [f.exception() for f in futures if f.done() and f.exception() is not None]
            if failed:
                raise AssertionError(f"a client failed: {failed[0]!r}")
            return fleet.done >= count

        wait_until(reached, 90, lambda: f"{count:.0f} placements answered ({fleet.done})\n{tails(self.workers)}")


def check_allocation(shared: dict[str, list[tuple[Any, ...]]], final: dict[str, str]) -> None:
    """(a) No SKU oversold: each SKU's allocation is exactly its open lines, its published ATS follows, and its
    stock (which only grew, see LEVELS) covers its allocation."""
    open_units: Counter[str] = Counter()
    for order_id, sku, quantity, *_ in shared["lines"]:
        if final[order_id] in OPEN:
            open_units[sku] += quantity
    assert [row[0] for row in shared["stock"]] == SKUS
    for sku, quantity, _as_of, allocated, published, *_ in shared["stock"]:
        assert quantity == LEVELS[T4][sku], (sku, quantity)
        assert allocated == open_units[sku], (sku, allocated, open_units[sku])
        assert published == max(0, quantity - allocated), (sku, quantity, allocated, published)
        assert quantity - allocated >= 0, f"SKU {sku} oversold: stock {quantity}, allocated {allocated}"


def check_caps(shared: dict[str, list[tuple[Any, ...]]], final: dict[str, str]) -> None:
    """(b) No cap exceeded: each collection holds exactly its lines that are not cancelled, within its cap."""
    ordered: Counter[tuple[str, str, str]] = Counter()
    for order_id, sku, quantity, _, _, assembly, collection in shared["lines"]:
        if assembly is not None and final[order_id] != "cancelled":
            ordered[(sku, assembly, collection)] += quantity
    held = {row[:3]: row[3] for row in shared["channels"] if row[2] != "*"}
    assert {key for key, units in ordered.items() if units} <= set(held)
    for (sku, assembly, collection), units in held.items():
        assert units == ordered[(sku, assembly, collection)], (sku, assembly, collection, units)
        cap = effective_cap(sku, assembly, collection)
        assert cap is None or units <= cap, f"{sku} in {assembly}/{collection}: {units} ordered, cap {cap}"


def check_files(scenario: Scenario, ledger: list[Any]) -> None:
    """(c) Every file applied exactly once (one `applied` ledger entry, for its content; a `duplicate` entry may
    follow a kill between the commit and the move), logged as applied at most once, archived once, never failed."""
    for kind, name, content in scenario.dropped:
        entries = [e for e in ledger if e.source == f"{kind}:{name}"]
        assert [e.sha256 for e in entries if e.outcome == "applied"] == [sha256(content)], (name, entries)
        assert {e.outcome for e in entries} <= {"applied", "duplicate"}, (name, entries)
        archive = scenario.drops[kind] / "archive"
        assert sorted(p.name for p in archive.iterdir() if p.name.startswith(name)) == [name]
        assert (archive / name).read_text(encoding="utf-8") == content
        logged = [line for w in scenario.workers for line in w.events("file_applied", source=f"{kind}:{name}")]
        assert len(logged) <= 1, (name, logged)
        if "duplicate" in {e.outcome for e in entries}:  # then the killed worker applied it, and died before the move
            assert not [w for w in scenario.survivors() if w.events("file_applied", source=f"{kind}:{name}")], name
    for folder in scenario.drops.values():
        assert not any((folder / "failed").iterdir())
        assert not any(p.is_file() for p in folder.iterdir())
    applied = {e.source: e for e in ledger if e.outcome == "applied"}
    assert applied["stock:s0-stale.csv"].rows_skipped == len(SKUS)  # older than every level: skipped whole
    assert all(e.rows_refused == 0 for e in applied.values()), "each acknowledgement is legal after the ones before"


def check_partner(partner: FakePartner, shared: dict[str, list[tuple[Any, ...]]], final: dict[str, str]) -> None:
    """(d) The partner holds the latest value of every ATS and channel ATS key, and each order message once."""
    assert partner.ats_view() == {row[0]: row[4] for row in shared["stock"]}
    assert partner.channel_view() == {row[:3]: row[4] for row in shared["channels"] if row[4] is not None}
    outcomes = Counter(r.outcome for r in partner.requests)
    assert set(outcomes) <= {"applied", "replay"}, outcomes  # a replay: a batch sent again under its key
    messages = {kind: {key for k, key, _ in shared["order_messages"] if k == kind} for kind in KINDS_OF_ORDERS}
    for kind in KINDS_OF_ORDERS:
        arrivals = partner.arrivals(kind)
        assert set(arrivals.values()) <= {1}, (kind, arrivals)
        assert set(arrivals) == messages[kind], kind
    assert messages["order_export"] <= {order for order, status in final.items() if status in ("invoicing", "closed")}
    assert messages["order_closed"] == {order for order, status in final.items() if status == "closed"}


def replay(
    tmp_path: Path, scenario: Scenario, db: sqlalchemy.Engine, placed: dict[str, Placement]
) -> dict[str, list[tuple[Any, ...]]]:
    """(e) The same inputs applied by one process on a fresh SQLite store, one at a time, in the order the shared
    store serialised them; the state it ends in.

    Why that order, not "snapshots, then orders, then acknowledgements": an order may have been accepted because a
    cancellation or a close before it freed units or cap room, so the rules would refuse it after the snapshots with
    no acknowledgement applied yet. The order the store serialised them in is read from instants each item takes
    while it holds its locks: a file holds the partner alone from before its ledger entry is closed (`finished_at`)
    to its commit; a placement holds the partner shared and its SKUs alone from before its `created_at` (stamped
    after its locks) to its commit. Two items that could see each other's effects never hold their locks at once, so
    these instants order them as they committed. Each placement must pass the rules again there (no oversell, no
    cap overrun), and each file must apply row for row as it did (same counts applied, skipped and refused).
    """
    g, o = schema.ingest_ledger, schema.orders
    with db.connect() as connection:
        files = connection.execute(select(g).where(g.c.outcome == "applied")).all()
        orders = connection.execute(select(o.c.order_id, o.c.created_at)).all()
    steps: list[tuple[int, str, Any]] = [(e.finished_at, "file", e) for e in files]
    steps += [(row.created_at, "order", placed[row.order_id]) for row in orders]
    steps.sort(key=lambda step: step[0])
    # two placements on other SKUs may commit side by side and read the same microsecond: either order replays
    # the same; a file holds the partner alone, so no other item may share its instant
    instants = [step[0] for step in steps]
    assert all(instants.count(e.finished_at) == 1 for e in files), "a file stamped with another item's instant"
    folder = tmp_path / "replay"
    folder.mkdir()
    config = write_config(folder, {PARTNER: {"stock_mode": "advanced"}}, f"sqlite:///{folder / 'gateway.db'}")
    clock = FakeClock()
    app = bootstrap.build(settings.load(config, environ={}), clock=clock)
    refused = []
    try:
        for moment, what, item in steps:
            clock.now = moment
            if what == "order":
                try:
                    app.commands.place(PARTNER, item.order_id, item.requested())
                except Refusal as refusal:
                    refused.append(f"{item.order_id}: {refusal}")
                continue
            source, _, name = item.source.partition(":")
            path = scenario.drops[source] / "archive" / name
            result = app.ingestor.ingest(PARTNER, Kind(item.kind), path, source=item.source)
            counts = (result.outcome, result.counts.applied, result.counts.skipped, result.counts.refused)
            assert counts == ("applied", item.rows_applied, item.rows_skipped, item.rows_refused), item.source
        assert refused == [], "accepted by the workers, refused one at a time: oversold, or over a cap"
        return store_state(app.store.engine)
    finally:
        app.close()


@pytest.mark.slow
def test_four_workers_eight_clients_and_a_kill_end_as_a_single_worker_replay_of_the_same_inputs(
    tmp_path: Path, store_url: str, spawn: Spawn, partner: FakePartner
) -> None:
    """4 workers on one PostgreSQL store, 8 clients placing orders on 20 SKUs (some in capped collections) through
    them while snapshots, cap files, status moves and confirmations arrive in shared drop folders; one worker is
    SIGKILLed half way. At the end: no SKU oversold, no cap exceeded, every file applied exactly once and archived
    once, the partner holds the latest value of every ATS and channel ATS and each order message once, and the store
    equals one process replaying the same inputs one at a time, in the order the shared store serialised them."""
    drops = {kind: tmp_path / "drop" / kind for kind in KINDS}
    partners = {
        PARTNER: {
            "stock_mode": "advanced",
            "sources": [folder_source(drops[kind], kind) for kind in KINDS],
            "api": {"base_url": partner.url, "token_env": PARTNER_TOKEN_ENV, "feeds": []} | API_TIMEOUTS,
            "delivery": DELIVERY,
        }
    }
    configs = [worker_config(tmp_path / "run" / f"w{i}", f"w{i}", store_url, partners) for i in range(4)]
    began = time.monotonic()
    workers = spawn(configs)
    startup = time.monotonic() - began
    scenario = Scenario(drops, workers)

    # the first snapshot before any cap (so it takes PostgreSQL's bulk path), then the caps: both before any order
    scenario.put("stock", "s1.csv", stock_file(LEVELS[T1], T1))
    scenario.wait_taken(30)
    scenario.put("caps", "caps1.csv", caps_file(CAPS_1))
    scenario.wait_taken(30)

    rng = random.Random(20260301)
    clients = [orders_of(client, 18, rng) for client in range(8)]
    every = [placement for placements in clients for placement in placements]
    fleet = Fleet([w.events("worker_started")[0]["api_port"] for w in workers])
    acks = Acks(random.Random(7))

    def accepted() -> list[Placement]:
        """The orders answered 201 so far: the partner acknowledges only orders it was told of."""
        return sorted((p for p in every if p.status == 201), key=lambda p: p.order_id)

    placing = time.monotonic()
    with ThreadPoolExecutor(len(clients)) as pool:
        futures = [pool.submit(place_all, fleet, client, placements) for client, placements in enumerate(clients)]
        scenario.wait_placed(fleet, len(every) / 4, futures)
        scenario.put("stock", "s2.csv", stock_file(LEVELS[T2], T2))
        scenario.put("orders", "a1.csv", acks.status_file(accepted()))
        scenario.put("confirmations", "c1.csv", acks.confirmations_file(accepted()))
        scenario.wait_placed(fleet, len(every) / 2, futures)
        workers[1].kill()  # SIGKILL, whatever it has in hand: requests, a file, a delivery
        scenario.killed.add(1)
        with fleet.lock:
            fleet.dead.add(1)
        killed_after = fleet.done
        scenario.put("stock", "s0-stale.csv", stock_file(STALE, T0))
        scenario.put("caps", "caps2.csv", caps_file(CAPS_2))
        scenario.put("orders", "a2.csv", acks.status_file(accepted()))
        scenario.wait_placed(fleet, len(every) * 3 / 4, futures)
        scenario.put("stock", "s3.csv", stock_file(LEVELS[T3], T3))
        scenario.put("orders", "a3.csv", acks.status_file(accepted()))
        scenario.put("confirmations", "c2.csv", acks.confirmations_file(accepted()))
        for future in futures:
            future.result(timeout=120)
    placed_in = time.monotonic() - placing
    scenario.put("stock", "s4.csv", stock_file(LEVELS[T4], T4))
    scenario.put("orders", "a4.csv", acks.status_file(accepted()))
    scenario.put("confirmations", "c3.csv", acks.confirmations_file(accepted()))
    scenario.wait_taken(60)

    db = store_engine(store_url)

    def outbox_states() -> dict[str, int]:
        x = schema.outbox
        with db.connect() as connection:
            rows = connection.execute(select(x.c.state, sqlalchemy.func.count()).group_by(x.c.state)).all()
        return {state: count for state, count in rows}

    # everything delivered: a batch the killed worker had claimed goes again when its lease ends
    wait_until(
        lambda: set(outbox_states()) == {"delivered"},
        60,
        lambda: f"the outbox delivered: {outbox_states()}\n{tails(workers)}",
    )
    assert all(w.running() for w in scenario.survivors()), tails(workers)
    shared = store_state(db)
    with db.connect() as connection:
        ledger = connection.execute(select(schema.ingest_ledger)).all()

    # every order answered 201 or refused by the rules (409), never anything else, and some of each
    answers = Counter((p.status, p.answer.get("code")) for p in every)
    assert set(answers) <= {(201, None), (409, "insufficient_stock"), (409, "cap_reached")}, answers
    assert answers[(201, None)] >= 20, answers
    assert answers[(409, "insufficient_stock")] + answers[(409, "cap_reached")] >= 1, answers
    placed = {p.order_id: p for p in accepted()}
    final = dict(shared["orders"])
    assert set(final) == set(placed), "the store holds exactly the orders answered 201"
    assert {(o, s, q) for o, s, q, *_ in shared["lines"]} == {
        (p.order_id, sku, quantity) for p in placed.values() for sku, quantity in p.lines
    }

    check_allocation(shared, final)
    check_caps(shared, final)
    check_files(scenario, ledger)
    check_partner(partner, shared, final)
    replaying = time.monotonic()
    replayed = replay(tmp_path, scenario, db, placed)
    db.dispose()
    assert shared == replayed, differences(shared, replayed)

    retried = sum(1 for p in every if p.tries > 1)
    duplicates = sum(1 for e in ledger if e.outcome == "duplicate")
    print(
        f"\nstarted in {startup:.1f} s; {len(every)} placements in {placed_in:.1f} s: {dict(answers)}, "
        f"{retried} tried again elsewhere; w1 killed after {killed_after}; {len(scenario.dropped)} files, "
        f"{duplicates} duplicate ledger entries; {len(partner.replays)} deliveries replayed; "
        f"replay {time.monotonic() - replaying:.1f} s"
    )


# --- 2: one source, two workers ----------------------------------------------------------------------------------


def test_two_workers_share_a_drop_folder_each_file_applied_by_exactly_one_and_a_source_kept_to_its_worker(
    tmp_path: Path, store_url: str, spawn: Spawn
) -> None:
    """Two workers on one PostgreSQL store watch one drop folder: each file is applied by exactly one of them
    (one `file_applied` line in both logs together, nothing of it in the other's log, one ledger entry); a source
    that names its worker (`workers = ["a"]`) is taken by that worker only, the other says so at start."""
    shared, own = tmp_path / "drop" / "shared", tmp_path / "drop" / "own"
    partners = {
        PARTNER: {
            "stock_mode": "advanced",
            "sources": [folder_source(shared, "stock"), folder_source(own, "stock", name="own", workers=["a"])],
        }
    }
    a, b = spawn([worker_config(tmp_path / "run" / name, name, store_url, partners) for name in ("a", "b")])
    assert b.events("source_not_here", source="own", worker="b")
    assert not a.events("source_not_here")

    files = {f"f{n}.csv": stock_file({f"X{n}": n, "Y": n}, f"2026-03-01T1{n}:00:00Z") for n in range(6)}
    for name, content in files.items():
        drop(shared, name, content)
    drop(own, "mine.csv", stock_file({"Z": 9}, T1))

    def archived() -> bool:
        done = sorted(p.name for p in (shared / "archive").iterdir())
        return done == sorted(files) and (own / "archive" / "mine.csv").exists()

    wait_until(archived, 30, lambda: f"every file archived\n{tails([a, b])}")
    for name in files:
        appliers = [w for w in (a, b) if w.events("file_applied", source=f"stock:{name}")]
        assert len(appliers) == 1, (name, tails([a, b]))
        [applier] = appliers
        assert len(applier.events("file_applied", source=f"stock:{name}")) == 1
        [other] = [w for w in (a, b) if w is not applier]
        assert not [line for line in other.lines() if name in json.dumps(line)], (name, tails([a, b]))
    assert len(a.events("file_applied", source="own:mine.csv")) == 1
    assert not [line for line in b.lines() if "mine.csv" in json.dumps(line)]
    assert not a.events("file_duplicate")
    assert not b.events("file_duplicate")
    db = store_engine(store_url)
    with db.connect() as connection:
        ledger = connection.execute(select(schema.ingest_ledger.c.source, schema.ingest_ledger.c.outcome)).all()
    db.dispose()
    expected = [(f"stock:{name}", "applied") for name in files] + [("own:mine.csv", "applied")]
    assert sorted(tuple(row) for row in ledger) == sorted(expected)
    assert a.running()
    assert b.running()
