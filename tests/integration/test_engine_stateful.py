"""A stateful property test: random commands through the real engine on SQLite, against a model of DOMAIN.md.

The model below is written straight from shared/DOMAIN.md (it does not use gateway.domain.allocation): stock
levels, inventory timestamps, orders, and the confirmation in force per line. For every command it decides on
its own whether the rules must refuse it, and after every step it recomputes each SKU's allocation and ATS by
the partner's mode and compares them with what the store holds, and with what the outbox has queued. Status
moves also come as status-only acknowledgement files (one row per order, refused row by row as the commands are,
refused whole when an order is given twice), and as bundles of a stock file and an acknowledgements file applied
together: a bundle must do what its members would do one after the other, queuing only the values that differ after
the whole bundle (under the bundle's ledger entry), and nothing at all when a member is refused whole.

Dated supply and demand (docs/rules.md, "Dated supply and dated demand"): dated snapshots give SKUs receipts, and
orders may be wanted on a date. The model then decides a placement by the ATP rule, brute force over every date
(the cumulative balance of the line's date and of every later one stays >= 0 with the line added), and checks the
per-date demand the store keeps against the open dated lines.

One SQLite file serves a whole test; each example gets a fresh partner in it, so no example sees another's data.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from gateway import bootstrap
from gateway.domain.days import today as day_of
from gateway.domain.errors import (
    ConfirmedAboveOrdered,
    IllegalTransition,
    InsufficientStock,
    OrderExists,
    Refusal,
    UnknownLine,
    UnknownOrder,
)
from gateway.domain.instant import Instant, parse, to_iso
from gateway.domain.messages import MessageKind
from gateway.domain.modes import StockMode
from gateway.domain.orders import RequestedLine
from gateway.domain.outcomes import Outcome
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service import queries
from gateway.service.bundles import Bundles
from gateway.service.commands import StaleStock
from gateway.service.snapshots import AtsChange
from gateway.settings import PartnerSettings, Settings
from tests.conftest import AppFactory, FakeClock

pytestmark = pytest.mark.both_stores

S = OrderStatus
SKUS = ("A", "B", "C")
UNKNOWN_SKU = "Z"  # never stocked, never ordered
UNKNOWN_ORDER = "NOPE"  # never placed
# Snapshots and confirmations are stamped an hour before, at, or one or two hours after the SKU's inventory
# timestamp (or T0 before its first snapshot), so that stale, equal and newer all happen often.
T0 = parse("2019-06-25T12:00:00Z")
HOUR = 3_600_000_000
OFFSETS = st.sampled_from((-1, 0, 1, 2))
# Every status, forward moves first: generation leans towards the first choices, and closing orders matters most.
STATUSES = st.sampled_from((S.CLOSED, S.INVOICING, S.CONFIRMED, S.CANCELLED, S.PENDING))
# An order's wanted_on, in days from today: most have none (demand today), the others fall among the receipts.
WANTED_IN = st.sampled_from((None, None, 0, 3, 5, 8))

MODES = {
    "simple_pending_on": PartnerSettings(stock_mode=StockMode.SIMPLE, pending_allocation=True),
    "simple_pending_off": PartnerSettings(stock_mode=StockMode.SIMPLE, pending_allocation=False),
    "advanced": PartnerSettings(stock_mode=StockMode.ADVANCED),
    "time_based": PartnerSettings(stock_mode=StockMode.TIME_BASED),
}

STATEFUL_SETTINGS = settings(
    max_examples=120,  # per mode; with PostgreSQL beside it the suite stays under 10 minutes on 2 cores
    stateful_step_count=25,
    deadline=None,
    report_multiple_bugs=False,  # one failure, shrunk: each example costs real transactions, shrinking two is slow
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_partner_numbers = itertools.count(1)


def _settings_for(backend: str) -> settings:
    """Every example on SQLite; on PostgreSQL (a network round trip per statement) enough to show the same SQL
    means the same rules there, within the suite's time."""
    return STATEFUL_SETTINGS if backend == "sqlite" else settings(STATEFUL_SETTINGS, max_examples=6)


# ---------------------------------------------------------------------------------------------------------------
# The model: DOMAIN.md, read literally.

_RANK = {S.PENDING: 0, S.CONFIRMED: 1, S.INVOICING: 2, S.CLOSED: 3}
_OPEN = (S.PENDING, S.CONFIRMED, S.INVOICING)


def legal(current: OrderStatus, requested: OrderStatus) -> bool:
    """pending -> confirmed -> invoicing -> closed, cancelled from the first three; the same again is fine."""
    if requested == current:
        return True
    if current in (S.CLOSED, S.CANCELLED):
        return False
    if requested == S.CANCELLED:
        return True
    return _RANK[requested] > _RANK[current]


@dataclass
class ModelOrder:
    status: OrderStatus
    lines: dict[str, int]
    wanted_on: date | None = None  # as stored: never before the day it was placed


@dataclass
class Model:
    mode: StockMode
    pending_allocation: bool
    allow_over_confirmation: bool = False  # else a confirmation above the ordered quantity is refused
    stock: dict[str, int] = field(default_factory=dict)  # a SKU never set has no entry (level 0)
    inventory_at: dict[str, Instant] = field(default_factory=dict)  # no entry: never snapshotted
    orders: dict[str, ModelOrder] = field(default_factory=dict)
    confirmation: dict[tuple[str, str], tuple[int, Instant]] = field(default_factory=dict)  # in force per line
    exported: list[str] = field(default_factory=list)  # orders moved into invoicing
    closed: list[str] = field(default_factory=list)  # orders moved into closed
    moved_at: dict[str, Instant] = field(default_factory=dict)  # simple mode: when a status move last took stock
    receipts: dict[str, list[tuple[date, int]]] = field(default_factory=dict)  # each after its snapshot's day

    def allocation(self, sku: str) -> int:
        return sum(self.units(order_id, sku) for order_id in self.orders)

    def units(self, order_id: str, sku: str) -> int:
        """What one line allocates, by the partner's mode (0 for an order without that SKU)."""
        order = self.orders[order_id]
        quantity = order.lines.get(sku)
        if quantity is None:
            return 0
        status = order.status
        if self.mode == StockMode.SIMPLE:
            # pending_allocation on: allocation = quantities of pending lines; off: allocation = 0.
            return quantity if self.pending_allocation and status == S.PENDING else 0
        if self.mode == StockMode.ADVANCED:
            # allocation = quantities of lines in pending, confirmed or invoicing.
            return quantity if status in _OPEN else 0
        # time_based: a confirmation in force replaces the ordered quantity, whatever the status;
        # closed lines allocate while the snapshot cannot include them yet.
        inventory_at = self.inventory_at.get(sku)
        confirmation = self.confirmation.get((order_id, sku))
        units = quantity if confirmation is None else confirmation[0]
        closed_not_in_snapshot = status == S.CLOSED and (
            confirmation is None or inventory_at is None or confirmation[1] > inventory_at
        )
        return units if status in _OPEN or closed_not_in_snapshot else 0

    def dated_demand(self) -> dict[tuple[str, date], int]:
        """(SKU, date) -> units of the dated lines of open orders: what the store keeps per date."""
        found: dict[tuple[str, date], int] = {}
        for order_id, order in self.orders.items():
            if order.wanted_on is None or order.status not in _OPEN:
                continue
            for sku in order.lines:
                units = self.units(order_id, sku)
                if units:
                    found[(sku, order.wanted_on)] = found.get((sku, order.wanted_on), 0) + units
        return found

    def meets_a_date(self, skus: list[str], wanted_on: date | None) -> bool:
        """Whether a placement is checked by the ATP rule: a date given, or a SKU with receipts or dated demand."""
        dated = {sku for sku, _ in self.dated_demand()}
        return wanted_on is not None or any(self.receipts.get(sku) or sku in dated for sku in skus)

    def atp(self, sku: str, on: date, today: date) -> int:
        """The smallest cumulative balance over `on` and every later date, by brute force: supply (on hand today,
        each receipt on its date) minus each allocating line on its date (open dated lines; the rest today)."""
        on = max(on, today)
        moves: list[tuple[date, int]] = [(today, self.stock.get(sku, 0))]
        moves += [(max(day, today), units) for day, units in self.receipts.get(sku, [])]
        for order_id, order in self.orders.items():
            if sku in order.lines:
                day = order.wanted_on if order.wanted_on is not None and order.status in _OPEN else today
                moves.append((max(day, today), -self.units(order_id, sku)))
        days = sorted({day for day, _ in moves} | {on})
        balances = [sum(units for day, units in moves if day <= d) for d in days]
        return min(balance for d, balance in zip(days, balances, strict=True) if d >= on)

    def ats(self, sku: str) -> int:
        """Stock level minus allocation; may be negative."""
        return self.stock.get(sku, 0) - self.allocation(sku)

    def published(self, sku: str, today: date) -> int | None:
        """What the gateway shows: max(0, ATS), for a SKU with receipts max(0, ATP today) (brute force: today's
        ATS is the ATP for today); None for a SKU the gateway never had a snapshot of."""
        if sku not in self.inventory_at:
            return None
        if self.receipts.get(sku):
            return max(0, self.atp(sku, today, today))
        return max(0, self.ats(sku))


# ---------------------------------------------------------------------------------------------------------------
# The machine.


class EngineMachine(RuleBasedStateMachine):
    """Commands through `App.commands` on a real store; the model says what must happen."""

    def __init__(self, shared: bootstrap.App, clock: FakeClock, partner: PartnerSettings, folder: Path) -> None:
        super().__init__()
        self.clock = clock
        self.shared = shared
        self.partner = f"sm{next(_partner_numbers)}"
        self.settings = partner
        config = Settings(store=shared.settings.store, partners={self.partner: partner})
        bootstrap.sync_partners(shared.store, config, clock)
        self.app = bootstrap.wire(config, shared.store, clock)
        self.model = Model(partner.stock_mode, partner.pending_allocation)
        self.folder = folder / self.partner  # the acknowledgement files this example sends
        self.folder.mkdir(parents=True)
        self.files_applied: set[str] = set()  # contents applied: the same again is a duplicate
        self.bundles_applied: set[tuple[str, ...]] = set()  # members' (kind, text) in order: again, a duplicate

    def _allow_over_confirmation(self) -> None:
        """The same partner, now with `allow_over_confirmation = true` (a setting the store does not keep)."""
        partner = self.settings.model_copy(update={"allow_over_confirmation": True})
        config = Settings(store=self.shared.settings.store, partners={self.partner: partner})
        self.app = bootstrap.wire(config, self.shared.store, self.clock)
        self.model.allow_over_confirmation = True

    # helpers

    def _published_now(self) -> dict[str, int | None]:
        today = day_of(self.clock(), UTC)
        return {sku: self.model.published(sku, today) for sku in SKUS}

    def _check_changes(self, before: dict[str, int | None], changes: list[AtsChange]) -> None:
        """The command reports exactly the SKUs whose published ATS moved, from what to what."""
        after = self._published_now()
        expected = {sku: (before[sku], after[sku]) for sku in SKUS if after[sku] != before[sku]}
        assert {c.sku: (c.before, c.after) for c in changes} == expected

    # the commands, each checked against the model

    def _place(self, order_id: str, lines: list[tuple[str, int]], in_days: int | None = None) -> None:
        """Place an order, wanted `in_days` days from today (None: no date)."""
        self.clock.advance()
        today = day_of(self.clock(), UTC)
        wanted_on = None if in_days is None else today + timedelta(days=in_days)
        merged: dict[str, int] = {}
        for sku, quantity in lines:
            merged[sku] = merged.get(sku, 0) + quantity
        if self.model.meets_a_date(list(merged), wanted_on):  # the ATP on the order's date, brute force
            room = {sku: self.model.atp(sku, wanted_on or today, today) for sku in merged}
        else:
            room = {sku: self.model.ats(sku) for sku in merged}
        short = {sku: quantity for sku, quantity in merged.items() if quantity > room[sku]}
        requested = [RequestedLine(sku, quantity) for sku, quantity in lines]
        if order_id in self.model.orders:
            # An existing id is refused; when the stock is short too, either reason is a fair refusal.
            expected: tuple[type[Refusal], ...] = (OrderExists, InsufficientStock) if short else (OrderExists,)
            with pytest.raises(expected):
                self.app.commands.place(self.partner, order_id, requested, wanted_on)
            return
        if short:
            with pytest.raises(InsufficientStock) as refused:
                self.app.commands.place(self.partner, order_id, requested, wanted_on)
            shortages = {s.sku: (s.requested, s.available) for s in refused.value.shortages}
            assert shortages == {sku: (quantity, room[sku]) for sku, quantity in short.items()}
            return
        before = self._published_now()
        changes = self.app.commands.place(self.partner, order_id, requested, wanted_on)
        self.model.orders[order_id] = ModelOrder(S.PENDING, merged, wanted_on)
        self._check_changes(before, changes)

    def _set_status(self, order_id: str, status: OrderStatus) -> None:
        self.clock.advance()
        order = self.model.orders.get(order_id)
        if order is None:
            with pytest.raises(UnknownOrder):
                self.app.commands.set_status(self.partner, order_id, status)
            return
        if not legal(order.status, status):
            with pytest.raises(IllegalTransition) as refused:
                self.app.commands.set_status(self.partner, order_id, status)
            assert (refused.value.order_id, refused.value.current, refused.value.requested) == (
                order_id,
                order.status.value,
                status.value,
            )
            return
        before = self._published_now()
        changes = self.app.commands.set_status(self.partner, order_id, status)
        self._move(order_id, status)
        self._check_changes(before, changes)

    def _move(self, order_id: str, status: OrderStatus) -> None:
        """The model's side of a legal status move."""
        order = self.model.orders[order_id]
        current = order.status
        if self.model.mode == StockMode.SIMPLE and current != status:
            # Simple mode moves stock: leaving pending for confirmed, invoicing or closed takes the quantity,
            # cancelling a confirmed or invoicing line gives it back.
            for sku, quantity in order.lines.items():
                if current == S.PENDING and status in (S.CONFIRMED, S.INVOICING, S.CLOSED):
                    self.model.stock[sku] = self.model.stock.get(sku, 0) - quantity
                    self.model.moved_at[sku] = self.clock()
                elif current in (S.CONFIRMED, S.INVOICING) and status == S.CANCELLED:
                    self.model.stock[sku] = self.model.stock.get(sku, 0) + quantity
        if current != status and status == S.INVOICING:
            self.model.exported.append(order_id)
        if current != status and status == S.CLOSED:
            self.model.closed.append(order_id)
        order.status = status

    def _acknowledge(self, moves: list[tuple[str, OrderStatus]], stamped: bool) -> None:
        """An acknowledgements file moving each order to its status, row by row in file order."""
        self.clock.advance()
        header = "order_id,status,updated_at\n" if stamped else "order_id,status\n"
        stamp = ",2019-06-26T12:00:00Z" if stamped else ""
        text = header + "".join(f"{order_id},{status.value}{stamp}\n" for order_id, status in moves)
        path = self.folder / f"ack{len(list(self.folder.iterdir()))}.csv"
        path.write_text(text, encoding="utf-8")
        before = self._published_now()
        result = self.app.ingestor.ingest(self.partner, Kind.ACKNOWLEDGEMENTS, path)
        first: dict[str, int] = {}
        twice = [(line, first[o]) for line, (o, _) in enumerate(moves, start=2) if first.setdefault(o, line) != line]
        if twice:
            # One row per order: the file is refused whole, naming each repeated row and its order's first row.
            assert result.outcome == Outcome.REJECTED
            assert [(p.line, p.column) for p in result.problems] == [(line, "order_id") for line, _ in twice]
            assert all(f"(first at line {at})" in p.message for p, (_, at) in zip(result.problems, twice, strict=True))
            return
        if text in self.files_applied:
            assert (result.outcome, result.counts.applied) == (Outcome.DUPLICATE, 0)
            return
        self.files_applied.add(text)
        refused = self._model_acknowledgements(moves)
        assert result.outcome == Outcome.APPLIED
        assert [(p.line, p.message) for p in result.refusals] == refused
        assert (result.counts.applied, result.counts.refused) == (len(moves) - len(refused), len(refused))
        # A file's changes run from each SKU's value before the file to its value after (one that came back to
        # where it was is no change).
        self._check_changes(before, [c for c in result.changes if c.before != c.after])

    def _model_acknowledgements(self, moves: list[tuple[str, OrderStatus]]) -> list[tuple[int, str]]:
        """The model's side of an acknowledgements file: each legal move made, the others refused (line, why)."""
        refused: list[tuple[int, str]] = []
        for line, (order_id, status) in enumerate(moves, start=2):
            order = self.model.orders.get(order_id)
            if order is None:
                refused.append((line, str(UnknownOrder(order_id))))
            elif not legal(order.status, status):
                refused.append((line, str(IllegalTransition(order_id, order.status.value, status.value))))
            else:
                self._move(order_id, status)
        return refused

    def _bundle(
        self, levels: list[tuple[str, int, Instant]], moves: list[tuple[str, OrderStatus]], stock_first: bool
    ) -> None:
        """A bundle of a stock file and an acknowledgements file (in either order), applied in one transaction."""
        self.clock.advance()
        number = len(list(self.folder.iterdir()))
        texts = {
            Kind.STOCK: "sku,quantity,as_of\n" + "".join(f"{sku},{q},{to_iso(a)}\n" for sku, q, a in levels),
            Kind.ACKNOWLEDGEMENTS: "order_id,status\n" + "".join(f"{o},{status.value}\n" for o, status in moves),
        }
        order = [Kind.STOCK, Kind.ACKNOWLEDGEMENTS] if stock_first else [Kind.ACKNOWLEDGEMENTS, Kind.STOCK]
        for kind in order:
            (self.folder / f"b{number}-{kind.value}.csv").write_text(texts[kind], encoding="utf-8")
        manifest = self.folder / f"b{number}.bundle.csv"
        manifest.write_text("kind,file\n" + "".join(f"{k.value},b{number}-{k.value}.csv\n" for k in order))
        before = self._published_now()
        dated_before = {sku for sku in SKUS if self.model.receipts.get(sku)}
        result = Bundles(self.app.ingestor).ingest_manifest(self.partner, manifest)
        members = dict(zip(order, result.members, strict=True))
        ids = [order_id for order_id, _ in moves]
        if len(set(ids)) != len(ids):
            # an order given twice refuses the acknowledgements file whole, and with it the whole bundle
            assert result.outcome == Outcome.REJECTED
            assert members[Kind.STOCK].reason == "bundle_rejected"
            assert members[Kind.ACKNOWLEDGEMENTS].problems
            return
        key = tuple(texts[kind] for kind in order)
        if key in self.bundles_applied:
            assert (result.outcome, result.counts.applied, result.ats_changes) == (Outcome.DUPLICATE, 0, 0)
            return
        self.bundles_applied.add(key)
        self.files_applied.add(texts[Kind.ACKNOWLEDGEMENTS])  # the same file alone is now a duplicate
        refused: list[tuple[int, str]] = []
        skipped = 0
        for kind in order:  # the members one after the other, as lone files would apply
            if kind == Kind.ACKNOWLEDGEMENTS:
                refused = self._model_acknowledgements(moves)
                continue
            for sku, quantity, as_of in levels:
                inventory_at = self.model.inventory_at.get(sku)
                if inventory_at is not None and as_of < inventory_at:
                    skipped += 1
                else:  # a snapshot without dates replaces the SKU's schedule: all on hand, no receipt left
                    self.model.stock[sku], self.model.inventory_at[sku] = quantity, as_of
                    self.model.receipts.pop(sku, None)
        assert result.outcome == Outcome.APPLIED
        assert [(p.line, p.message) for p in members[Kind.ACKNOWLEDGEMENTS].refusals] == refused
        assert members[Kind.STOCK].counts.skipped == skipped
        self._check_changes(before, result.changes)
        # only the values that differ after the whole bundle were queued, under the bundle's entry
        after = self._published_now()
        with self.app.store.read() as tx:
            rows = tx.outbox.rows(tx.partners.id_of(self.partner), state=None, kind=MessageKind.ATS)
        queued = {m.key: m.value for m in rows if m.ledger_id == result.ledger_id}
        changed = {sku: after[sku] for sku in SKUS if after[sku] != before[sku]}
        assert {sku: value for sku, value in queued.items() if sku in changed} == changed
        # and a SKU that held receipts may be queued again with its value unchanged: its schedule moved (dropped
        # by the snapshot, or later dates moved under a value that stayed 0), and the message carries it
        again = {sku: value for sku, value in queued.items() if sku not in changed}
        assert set(again) <= dated_before, (again, dated_before)
        assert again == {sku: after[sku] for sku in again}

    def _set_stock(self, sku: str, quantity: int, as_of: Instant) -> None:
        self.clock.advance()
        inventory_at = self.model.inventory_at.get(sku)
        if inventory_at is not None and as_of < inventory_at:
            with pytest.raises(StaleStock):
                self.app.commands.set_stock(self.partner, sku, quantity, as_of)
            return
        before = self._published_now()
        done = self.app.commands.set_stock(self.partner, sku, quantity, as_of)
        # simple mode warns of a new level older than the last move that took the SKU's stock (DOMAIN.md)
        moved_at = self.model.moved_at.get(sku)
        unchanged = (self.model.stock.get(sku), inventory_at) == (quantity, as_of)
        predates = moved_at is not None and as_of < moved_at and not unchanged
        assert [(w.code, w.skus, w.count) for w in done.warnings] == (
            [("snapshot_predates_confirmation", (sku,), 1)] if predates else []
        )
        self.model.stock[sku] = quantity
        self.model.inventory_at[sku] = as_of
        self._check_changes(before, done.changes)

    def _receive(self, sku: str, on_hand: int, receipts: list[tuple[int, int]], as_of: Instant) -> None:
        """A stock file with `available_from`: the SKU's whole schedule replaced, unless stale."""
        self.clock.advance()
        today = day_of(self.clock(), UTC)
        dated = [(today + timedelta(days=n), units) for n, units in receipts]
        rows = [f"{sku},{on_hand},{to_iso(as_of)},\n"] + [f"{sku},{u},{to_iso(as_of)},{d}\n" for d, u in dated]
        path = self.folder / f"dated{len(list(self.folder.iterdir()))}.csv"
        text = "sku,quantity,as_of,available_from\n" + "".join(rows)
        path.write_text(text, encoding="utf-8")
        before = self._published_now()
        result = self.app.ingestor.ingest(self.partner, Kind.STOCK, path)
        if text in self.files_applied:  # the same content again: a duplicate, nothing applied
            assert (result.outcome, result.counts.applied) == (Outcome.DUPLICATE, 0)
            return
        self.files_applied.add(text)
        inventory_at = self.model.inventory_at.get(sku)
        if inventory_at is not None and as_of < inventory_at:
            assert not result.changes, result.summary()  # stale: the schedule in force stays
            return
        merged: dict[date, int] = {}
        for day, units in dated:
            merged[day] = merged.get(day, 0) + units
        due = sum(units for day, units in merged.items() if day <= today)
        self.model.stock[sku] = on_hand + due
        self.model.inventory_at[sku] = as_of
        self.model.receipts[sku] = sorted((day, units) for day, units in merged.items() if day > today)
        self._check_changes(before, result.changes)

    def _confirm(self, order_id: str, sku: str, quantity: int, at: Instant) -> None:
        self.clock.advance()
        order = self.model.orders.get(order_id)
        if order is None:
            with pytest.raises(UnknownOrder):
                self.app.commands.confirm(self.partner, order_id, sku, quantity, at)
            return
        if sku not in order.lines:
            with pytest.raises(UnknownLine):
                self.app.commands.confirm(self.partner, order_id, sku, quantity, at)
            return
        if quantity > order.lines[sku] and not self.model.allow_over_confirmation:
            with pytest.raises(ConfirmedAboveOrdered):
                self.app.commands.confirm(self.partner, order_id, sku, quantity, at)
            return
        in_force = self.model.confirmation.get((order_id, sku))
        replaces = in_force is None or at >= in_force[1]
        before = self._published_now()
        changes = self.app.commands.confirm(self.partner, order_id, sku, quantity, at)
        if replaces:
            self.model.confirmation[(order_id, sku)] = (quantity, at)
        self._check_changes(before, changes)

    # rules: once orders exist, ids are mostly theirs, now and then one never placed

    def _draw_order_id(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from([*sorted(self.model.orders), UNKNOWN_ORDER]), label="order_id")

    def _stamp(self, sku: str, offset: int) -> Instant:
        return self.model.inventory_at.get(sku, T0) + offset * HOUR

    @initialize(
        levels=st.lists(st.integers(0, 40), min_size=len(SKUS), max_size=len(SKUS)),
        unstocked=st.sets(st.sampled_from(SKUS), max_size=1),
        over_confirmation=st.booleans(),
    )
    def first_snapshot(self, levels: list[int], unstocked: set[str], over_confirmation: bool) -> None:
        if over_confirmation:
            self._allow_over_confirmation()
        for sku, quantity in zip(SKUS, levels, strict=True):
            if sku not in unstocked:
                self._set_stock(sku, quantity, T0)

    @rule(
        data=st.data(),
        lines=st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 6)), min_size=1, max_size=3),
        again=st.integers(0, 4),
        in_days=WANTED_IN,
    )
    def place(self, data: st.DataObject, lines: list[tuple[str, int]], again: int, in_days: int | None) -> None:
        """Mostly a new order, often wanted on a date; now and then an id already placed."""
        if again == 4 and self.model.orders:
            order_id = data.draw(st.sampled_from(sorted(self.model.orders)), label="order_id")
        else:
            order_id = f"O{len(self.model.orders) + 1}"
        self._place(order_id, lines, in_days)

    @rule(
        sku=st.sampled_from(SKUS),
        on_hand=st.integers(0, 4),  # little on hand: the receipts decide which dates fit
        receipts=st.lists(st.tuples(st.sampled_from((-1, 0, 2, 4, 7)), st.integers(1, 12)), min_size=1, max_size=3),
        offset=OFFSETS,
    )
    def receive(self, sku: str, on_hand: int, receipts: list[tuple[int, int]], offset: int) -> None:
        """A dated snapshot of one SKU: units on hand and receipts some days from today (one dated today or before
        is on hand from the start)."""
        self._receive(sku, on_hand, receipts, self._stamp(sku, offset))

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data(), status=STATUSES)
    def set_status(self, data: st.DataObject, status: OrderStatus) -> None:
        """Any order, closed, cancelled or never placed included, to any status."""
        self._set_status(self._draw_order_id(data), status)

    @precondition(lambda self: any(order.status in _OPEN for order in self.model.orders.values()))
    @rule(data=st.data(), status=STATUSES)
    def move_open_order(self, data: st.DataObject, status: OrderStatus) -> None:
        """An order still open to any status: keeps lifecycles moving towards closed and cancelled."""
        open_orders = sorted(order_id for order_id, order in self.model.orders.items() if order.status in _OPEN)
        self._set_status(data.draw(st.sampled_from(open_orders), label="order_id"), status)

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data(), stamped=st.booleans(), twice=st.integers(0, 5))
    def acknowledge(self, data: st.DataObject, stamped: bool, twice: int) -> None:
        """A status-only acknowledgements file: up to three orders (open ones likely, one never placed now and
        then), each to any status; now and then one of them given a second row."""
        open_orders = [o for o, order in sorted(self.model.orders.items()) if order.status in _OPEN]
        candidates = st.sampled_from([*open_orders, *sorted(self.model.orders), UNKNOWN_ORDER])
        ids = data.draw(st.lists(candidates, min_size=1, max_size=3, unique=True), label="orders")
        moves = [(order_id, data.draw(STATUSES, label="status")) for order_id in ids]
        if twice == 5:
            moves.append((ids[0], data.draw(STATUSES, label="status again")))
        self._acknowledge(moves, stamped)

    @rule(
        data=st.data(),
        skus=st.sets(st.sampled_from(SKUS), min_size=1),
        stock_first=st.booleans(),
        twice=st.integers(0, 7),
    )
    def bundle(self, data: st.DataObject, skus: set[str], stock_first: bool, twice: int) -> None:
        """A stock file and an acknowledgements file applied together as one bundle: each level often the SKU's
        ATS now (the units of its open orders shipped: closing them brings the ATS back where it was), open orders
        likely, one never placed now and then, every status; now and then an order given twice (the whole bundle
        refused)."""
        levels: list[tuple[str, int, Instant]] = []
        for sku in sorted(skus):
            shipped = st.just(max(0, self.model.ats(sku)))
            quantity = data.draw(st.one_of(shipped, st.integers(0, 40)), label=f"{sku} level")
            levels.append((sku, quantity, self._stamp(sku, data.draw(OFFSETS, label=f"{sku} offset"))))
        open_orders = [o for o, order in sorted(self.model.orders.items()) if order.status in _OPEN]
        candidates = st.sampled_from([*open_orders, *sorted(self.model.orders), UNKNOWN_ORDER])
        ids = data.draw(st.lists(candidates, min_size=1, max_size=3, unique=True), label="orders")
        moves = [(order_id, data.draw(STATUSES, label="status")) for order_id in ids]
        if twice == 7:
            moves.append((ids[0], data.draw(STATUSES, label="status again")))
        self._bundle(levels, moves, stock_first)

    @rule(sku=st.sampled_from(SKUS), quantity=st.integers(0, 40), offset=OFFSETS)
    def set_stock(self, sku: str, quantity: int, offset: int) -> None:
        self._set_stock(sku, quantity, self._stamp(sku, offset))

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data(), quantity=st.integers(0, 6), offset=OFFSETS)
    def confirm(self, data: st.DataObject, quantity: int, offset: int) -> None:
        order_id = self._draw_order_id(data)
        held = sorted(self.model.orders[order_id].lines) if order_id in self.model.orders else []
        sku = data.draw(st.sampled_from([*held, *held, *SKUS, UNKNOWN_SKU]), label="sku")
        self._confirm(order_id, sku, quantity, self._stamp(sku, offset))

    # what must hold after every step

    @invariant()
    def store_agrees_with_model(self) -> None:
        with self.app.store.read() as tx:
            views = {v.sku: v for v in queries.ats(tx, self.partner, [*SKUS, UNKNOWN_SKU])}
            partner_id = tx.partners.id_of(self.partner)
            messages = tx.outbox.rows(partner_id, state=None)
            lines = {
                (line.order_id, line.sku): (line.quantity, line.status, line.confirmed_quantity, line.confirmed_at)
                for line in tx.orders.all_lines(partner_id)
            }
            kept = tx.supply.demand(partner_id, list(SKUS))
            receipts = tx.supply.receipts(partner_id, list(SKUS))
        published = self._published_now()
        for sku in SKUS:
            view = views[sku]
            expected = (
                self.model.stock.get(sku, 0),
                self.model.allocation(sku),
                published[sku] or 0,
                self.model.inventory_at.get(sku),
            )
            assert (view.stock, view.allocated, view.ats, view.as_of) == expected, sku
        assert (views[UNKNOWN_SKU].stock, views[UNKNOWN_SKU].allocated) == (0, 0)
        assert {(sku, day): units for sku, rows in kept.items() for day, units in rows} == self.model.dated_demand()
        assert {sku: list(rows) for sku, rows in receipts.items()} == {
            s: r for s, r in self.model.receipts.items() if r
        }

        # The lines of orders not cancelled: merged quantities, the order's status, the confirmation in force.
        expected_lines: dict[tuple[str, str], tuple[int, OrderStatus, int | None, Instant | None]] = {}
        for order_id, order in self.model.orders.items():
            if order.status == S.CANCELLED:
                continue
            for sku, quantity in order.lines.items():
                confirmed_quantity, confirmed_at = self.model.confirmation.get((order_id, sku), (None, None))
                expected_lines[(order_id, sku)] = (quantity, order.status, confirmed_quantity, confirmed_at)
        assert lines == expected_lines

        # Nothing delivers in this test, so every message is pending; ATS values are coalesced per SKU, and the
        # one queued is the current published value. A SKU the gateway never had a snapshot of has none.
        assert all(m.state == "pending" for m in messages)
        ats_rows = [m for m in messages if m.kind == "ats"]
        assert len(ats_rows) == len({m.key for m in ats_rows}), "ATS messages are not coalesced per SKU"
        queued = {m.key: m.value for m in ats_rows}
        expected_queue = {sku: value for sku, value in published.items() if value is not None}
        assert queued == expected_queue

        # Orders reaching invoicing are exported once, closed orders announced once.
        kinds = Counter((m.kind, m.key) for m in messages if m.kind != "ats")
        assert sorted(kinds.elements()) == sorted(
            [("order_export", o) for o in self.model.exported] + [("order_closed", o) for o in self.model.closed]
        )


@pytest.mark.parametrize("mode", list(MODES))
def test_engine_follows_the_model(
    mode: str, make_app: AppFactory, clock: FakeClock, store_backend: str, tmp_path: Path
) -> None:
    """Random placements, status moves (commands and acknowledgement files), snapshots and confirmations keep
    store and model equal, per mode."""
    shared = make_app(unused={"stock_mode": "simple"})  # the store file; each example adds its own partner
    run_state_machine_as_test(
        lambda: EngineMachine(shared, clock, MODES[mode], tmp_path / "acks"), settings=_settings_for(store_backend)
    )
