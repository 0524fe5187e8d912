"""A randomized test of delivery: thousands of changes while the partner fails a third of the requests.

Seeded random commands (stock levels, placements in and out of capped collections, status moves, caps) go
through the real engine on SQLite while a delivery pass runs every hundred of them against the fake partner
(tests/support/partner.py) served for real on 127.0.0.1, with chaos on: about one delivery in three gets a 500,
a 429 (Retry-After 0), a reset connection or a lost answer (applied, then reset). Values are replaced while they
wait and while the batches that carried them fail and are sent again; at a few random points the partner
refuses one batch with a 400, which sends it to dead letter. Then the partner calms down and delivery drains.

What must hold at the end (shared/DOMAIN.md "What the gateway publishes", docs of gateway/service/publish/):

- the partner's view of every SKU's ATS (latest computed_at) is the store's published ATS, which is the engine's
  current ATS, unless the latest message of that SKU went to dead letter; the same for every channel;
- every order that reached invoicing arrived once among the order exports, every closed order once among the
  closed orders (at most once when its message is dead), and no other order arrived;
- nothing is pending; every dead message died of a 400; the lost answers were re-sent under the same key and
  answered as replays, and every request the gateway sent kept to the contract.

Nothing sleeps for real: the publisher's `sleep` advances the fake clock.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway import bootstrap, settings
from gateway.domain.errors import IllegalTransition, Refusal
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.service import queries
from gateway.service.channels import channel_key
from gateway.service.commands import StaleStock
from gateway.service.publish import DeliveryReport
from gateway.store.port import OutboxRecord
from gateway.store.sql import SqlStore
from tests.conftest import FakeClock, write_config
from tests.support.partner import FakePartner, Status

S = OrderStatus
PARTNER = "acme"
TOKEN_ENV = "STOCK_GATEWAY_TEST_PARTNER_TOKEN"  # noqa: S105 - the name of a variable, not a secret

OPERATIONS = 2500  # commands after the first level of every SKU (200 more)
DELIVER_EVERY = 100  # commands between two delivery passes while the partner is chaotic
REFUSALS = 4  # batches the partner refuses with a 400 (dead letter), at random points
CHAOS = 1 / 3
DRAIN_PASSES = 200

SKUS = [f"SKU-{number:03d}" for number in range(200)]
CHANNEL_SKUS = SKUS[:24]  # the SKUs ordered in collections and capped: their channels move often
ASSEMBLIES = ("paris-11", "lyon-3")
COLLECTIONS = ("2026-12-01", "2026-12-08", "2026-12-15")
# the breaker opens after two failed batches in a row, for longer than a hundred commands take (about 100 s):
# the next pass finds it open, and values pile up and coalesce meanwhile
BREAKER_PAUSE = 150.0

DELIVERY = {
    "batch_size": 50,
    "retries": 2,
    "backoff_initial": 0.001,
    "backoff_max": 0.01,
    "wait_in_pass_max": 1.0,
    "max_attempts": 1000,
    "breaker_threshold": 2,
    "breaker_pause": BREAKER_PAUSE,
}

# the status an order is moved to, by its current one: mostly forward a step, sometimes a jump or a cancel
NEXT: dict[OrderStatus, tuple[tuple[OrderStatus, ...], tuple[int, ...]]] = {
    S.PENDING: ((S.CONFIRMED, S.INVOICING, S.CLOSED, S.CANCELLED), (50, 20, 10, 20)),
    S.CONFIRMED: ((S.INVOICING, S.CLOSED, S.CANCELLED, S.CONFIRMED), (60, 10, 20, 10)),
    S.INVOICING: ((S.CLOSED, S.CANCELLED, S.INVOICING), (75, 15, 10)),
}


@dataclass
class Run:
    """The app, the partner and what the commands did, as far as the test must know it."""

    app: bootstrap.App
    clock: FakeClock
    partner: FakePartner
    rng: random.Random
    status: dict[str, OrderStatus] = field(default_factory=dict)
    invoiced: set[str] = field(default_factory=set)
    closed: set[str] = field(default_factory=set)
    as_of: dict[str, int] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    reports: list[DeliveryReport] = field(default_factory=list)
    ats_changes: int = 0
    placed: int = 0

    # commands

    def set_stock(self) -> None:
        sku = self.rng.choice(SKUS)
        stale = sku in self.as_of and self.rng.random() < 0.05
        moment = self.as_of[sku] - 3_600_000_000 if stale else self.clock()
        try:
            changes = self.app.commands.set_stock(PARTNER, sku, self.rng.randint(0, 40), moment).changes
        except StaleStock:
            assert stale, f"{sku}: a level as of {moment} was refused as stale after {self.as_of[sku]}"
            self.outcomes["stock stale"] += 1
            return
        assert not stale, f"{sku}: a level older than its inventory timestamp was applied"
        self.as_of[sku] = moment
        self.ats_changes += len(changes)
        self.outcomes["stock set"] += 1

    def place(self) -> None:
        self.placed += 1
        order_id = f"O-{self.placed:05d}"
        lines: list[RequestedLine] = []
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            quantity = self.rng.randint(1, 4)
            if self.rng.random() < 0.5:
                sku = self.rng.choice(CHANNEL_SKUS)
                where = (self.rng.choice(ASSEMBLIES), self.rng.choice(COLLECTIONS))
                # one SKU in one place per order: a second line of it goes where the first went (merged)
                same = [(line.assembly, line.collection) for line in lines if line.sku == sku]
                assembly, collection = same[0] if same else where
                lines.append(RequestedLine(sku, quantity, assembly, collection))
            else:
                sku = self.rng.choice(SKUS)
                if any(line.sku == sku and line.assembly is not None for line in lines):
                    continue
                lines.append(RequestedLine(sku, quantity))
        try:
            changes = self.app.commands.place(PARTNER, order_id, lines)
        except Refusal as refusal:
            self.outcomes[f"place refused ({refusal.code})"] += 1
            return
        self.status[order_id] = S.PENDING
        self.ats_changes += len(changes)
        self.outcomes["placed"] += 1

    def move(self) -> None:
        open_orders = [order for order, status in self.status.items() if status in NEXT]
        if not open_orders or self.rng.random() < 0.03:
            self.move_out_of_a_final_status()
            return
        order_id = self.rng.choice(open_orders)
        current = self.status[order_id]
        choices, weights = NEXT[current]
        target = self.rng.choices(choices, weights)[0]
        changes = self.app.commands.set_status(PARTNER, order_id, target)
        self.ats_changes += len(changes)
        self.status[order_id] = target
        if target != current:
            if target == S.INVOICING:
                self.invoiced.add(order_id)
            elif target == S.CLOSED:
                self.closed.add(order_id)
        self.outcomes[f"moved to {target.value}"] += 1

    def move_out_of_a_final_status(self) -> None:
        final = [order for order, status in self.status.items() if status not in NEXT]
        if not final:
            return
        order_id = self.rng.choice(final)
        with pytest.raises(IllegalTransition):
            self.app.commands.set_status(PARTNER, order_id, S.PENDING)
        self.outcomes["illegal move refused"] += 1

    def set_cap(self) -> None:
        sku = self.rng.choice(CHANNEL_SKUS)
        assembly = self.rng.choice(ASSEMBLIES)
        collection = self.rng.choice((*COLLECTIONS, None))
        limit = self.rng.choice((None, *range(13)))
        changes = self.app.commands.set_cap(PARTNER, sku, assembly, collection, limit).changes
        self.ats_changes += len(changes)
        self.outcomes["cap set"] += 1

    # delivery

    def deliver(self) -> DeliveryReport:
        report = self.app.publisher.deliver(PARTNER)
        self.reports.append(report)
        return report

    def pending(self) -> int:
        with self.app.store.read() as tx:
            counts = tx.outbox.counts(tx.partners.id_of(PARTNER))
        return sum(count.count for count in counts if count.state == "pending")

    def outbox(self) -> list[OutboxRecord]:
        with self.app.store.read() as tx:
            return tx.outbox.rows(tx.partners.id_of(PARTNER), state=None)


@pytest.fixture
def partner() -> Iterator[FakePartner]:
    with FakePartner() as running:
        yield running


def open_app(tmp_path: Path, clock: FakeClock, partner: FakePartner, mode: str) -> bootstrap.App:
    """The app on a fresh SQLite file, delivering everything to the fake partner; its sleep advances the clock."""
    options = {
        "stock_mode": mode,
        "api": {"base_url": partner.url, "token_env": TOKEN_ENV, "connect_timeout": 2.0, "read_timeout": 5.0},
        "delivery": DELIVERY,
    }
    path = write_config(tmp_path, {PARTNER: options}, store_url=f"sqlite:///{tmp_path / 'gateway.db'}")
    config = settings.load(path, environ={})
    store = SqlStore.open(config.store.url)
    bootstrap.sync_partners(store, config, clock)
    return bootstrap.wire(config, store, clock, sleep=clock.advance)


def latest(messages: list[OutboxRecord], kind: str) -> dict[str, OutboxRecord]:
    """The newest message of each key of `kind` (a key has one row per value that left the queue, and one pending)."""
    found: dict[str, OutboxRecord] = {}
    for message in sorted(messages, key=lambda m: m.id):
        if message.kind == kind:
            found[message.key] = message
    return found


@pytest.mark.parametrize(("seed", "mode"), [(20261123, "advanced"), (4077, "simple")])
def test_the_partner_ends_with_the_stores_view_despite_chaos(
    tmp_path: Path, clock: FakeClock, partner: FakePartner, monkeypatch: pytest.MonkeyPatch, seed: int, mode: str
) -> None:
    monkeypatch.setenv(TOKEN_ENV, partner.token or "")
    rng = random.Random(seed)
    app = open_app(tmp_path, clock, partner, mode)
    try:
        app.publisher.rng = random.Random(seed)  # the jitter of delays between passes, reproducible too
        run = Run(app, clock, partner, rng)
        partner.chaos(CHAOS, seed=seed)

        for sku in SKUS:  # a first level for every SKU, so that orders have something to take
            clock.advance(0.01)
            run.as_of[sku] = clock()
            run.ats_changes += len(app.commands.set_stock(PARTNER, sku, rng.randint(5, 40), clock()).changes)
        # early enough that the passes after them send the batches they are meant for, whatever fails meanwhile
        refusals = set(rng.sample(range(DELIVER_EVERY, OPERATIONS - 5 * DELIVER_EVERY), REFUSALS))
        commands = (run.set_stock, run.place, run.move, run.set_cap)
        for step in range(1, OPERATIONS + 1):
            clock.advance(rng.choice((0.0, 0.2, 1.0, 1.0, 3.0)))  # now and then two changes at the same instant
            rng.choices(commands, (33, 27, 33, 7))[0]()
            if step in refusals:
                # the refusal lands on one of the next few batches, so not always on the first kind of a pass
                accepted = [Status(200, body='{"accepted": true}')] * rng.randint(0, 6)
                partner.script(*accepted, Status(400, body="refused by the partner: an item it will not take"))
            if step % DELIVER_EVERY == 0:
                run.deliver()

        # the partner calms down; delivery drains whatever is due, past backoffs and an open breaker
        partner.calm()
        for _ in range(DRAIN_PASSES):
            if not run.pending():
                break
            clock.advance(BREAKER_PAUSE + 1)
            run.deliver()
        left = run.pending()
        assert left == 0, f"{left} message(s) still pending after {DRAIN_PASSES} calm passes: {run.reports[-3:]}"
        check_the_end(run)
    finally:
        app.close()


def check_the_end(run: Run) -> None:
    app, partner = run.app, run.partner
    messages = run.outbox()
    requests = partner.requests
    dead = [m for m in messages if m.state == "dead"]

    # (4) nothing pending; the only dead letters are the batches refused with a 400, all of them
    assert {m.state for m in messages} <= {"delivered", "dead"}
    assert all(m.last_status == 400 for m in dead), [(m.kind, m.key, m.last_status, m.last_error) for m in dead]
    refused = [r for r in requests if r.status == 400]
    assert partner.pending == [], "a scripted refusal was never sent: no batch was left to take it"
    assert len(refused) == REFUSALS, [str(r) for r in refused]
    assert all(r.outcome == "status 400" for r in refused), [str(r) for r in refused]
    assert len({m.batch_id for m in dead}) == REFUSALS
    # every request kept to the contract: authorized, valid, under a key
    assert not [str(r) for r in requests if r.outcome == "unauthorized" or r.outcome.startswith("invalid")]

    with app.store.read() as tx:
        partner_id = tx.partners.id_of(PARTNER)
        stock = {record.sku: record for record in tx.stock.iterate(partner_id)}
        views = {view.sku: view for view in queries.ats(tx, PARTNER)}
        held = tx.caps.channels(partner_id, SKUS)
        channel_now = {
            (c.sku, c.assembly, c.collection): queries.channel(tx, PARTNER, c.sku, c.assembly, c.collection).ats
            for c in held
        }

    # (1) every SKU: the store's published ATS is the engine's ATS and the newest message's value; the partner
    # has it unless that message is dead
    ats_messages = latest(messages, "ats")
    assert set(ats_messages) == set(stock) == set(SKUS)
    seen = partner.ats_view()
    assert set(seen) <= set(stock)
    for sku, record in stock.items():
        message = ats_messages[sku]
        assert record.published == views[sku].ats, f"{sku}: published {record.published}, ATS {views[sku]}"
        assert message.value == record.published, f"{sku}: newest message {message}, published {record.published}"
        if message.state == "delivered":
            assert seen.get(sku) == record.published, f"{sku}: the partner has {seen.get(sku)}, store {record}"
    dead_skus = {sku for sku, m in ats_messages.items() if m.state == "dead"}

    # (2) every channel likewise
    channel_messages = latest(messages, "channel_ats")
    channels_seen = partner.channel_view()
    assert set(channel_messages) == {channel_key(c.sku, c.assembly, c.collection) for c in held}
    for record in held:
        where = (record.sku, record.assembly, record.collection)
        message = channel_messages[channel_key(*where)]
        assert record.published == channel_now[where], f"{where}: published {record.published}, now {channel_now}"
        assert message.value == record.published, f"{where}: newest message {message}, published {record}"
        if message.state == "delivered":
            assert channels_seen.get(where) == record.published, (
                f"{where}: the partner has {channels_seen.get(where)}, the store published {record.published}"
            )
    dead_channels = {key for key, m in channel_messages.items() if m.state == "dead"}

    # (3) orders: one message per order that reached invoicing / closed, arrived once (at most once when dead)
    for kind, orders, status in (("order_export", run.invoiced, "invoicing"), ("order_closed", run.closed, "closed")):
        queued = [m for m in messages if m.kind == kind]
        assert sorted(m.key for m in queued) == sorted(orders), f"{kind}: queued once per order"
        arrived = partner.arrivals(kind)
        assert set(arrived) <= orders, f"{kind}: arrived for orders never moved there: {set(arrived) - orders}"
        for message in queued:
            if message.state == "delivered":
                assert arrived[message.key] == 1, f"{kind} {message.key} arrived {arrived[message.key]} times"
            else:
                assert arrived[message.key] <= 1, f"dead {kind} {message.key} arrived {arrived[message.key]} times"
        assert {item["status"] for item in partner.items(kind)} <= {status}

    # (5) lost answers were sent again under the same key and answered as replays; no key applied twice
    keys = [key for _, key, _ in partner.batches]
    assert len(keys) == len(set(keys))
    replays = partner.replays
    assert replays, "no lost answer was re-sent: chaos did not exercise replays"
    assert set(replays) <= set(keys)
    # the chaos really happened, and values were coalesced: fewer ATS items reached the partner than changes made
    outcomes = Counter(r.outcome for r in requests)
    assert outcomes["reset"], outcomes
    assert outcomes["lost applied"], outcomes
    assert outcomes["status 500"] + outcomes["status 429"], outcomes
    assert len(partner.items("ats")) < run.ats_changes

    # batches sent again with fewer items: values replaced while their batch waited to be sent again
    sent: dict[str, set[bytes]] = {}
    for request in requests:
        if request.idempotency_key:
            sent.setdefault(request.idempotency_key, set()).add(request.body)
    print(  # shown with -s: what the run exercised
        json.dumps(
            {
                "keys sent with different bodies": sum(len(bodies) > 1 for bodies in sent.values()),
                "commands": dict(run.outcomes),
                "requests": len(requests),
                "outcomes": dict(outcomes),
                "batches applied": len(keys),
                "replays": len(replays),
                "dead messages": Counter(m.kind for m in dead),
                "dead latest ATS / channel keys": [len(dead_skus), len(dead_channels)],
                "ats changes": run.ats_changes,
                "ats items applied": len(partner.items("ats")),
                "invoiced / closed": [len(run.invoiced), len(run.closed)],
                "passes": len(run.reports),
                "breaker open passes": sum(r.breaker_open for r in run.reports),
            }
        )
    )
