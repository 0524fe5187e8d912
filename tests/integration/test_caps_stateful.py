"""A stateful property test of caps: snapshots, cap settings, placements in channels and status moves.

Random commands go through the real engine on SQLite and are checked against a model written from
shared/DOMAIN.md ("Caps per assembly and collection", "Placement and concurrency"); the model does not use
gateway.domain.caps or gateway.domain.allocation. It keeps per (SKU, assembly) the assembly default and the
per-collection overrides (a number or an explicit "no maximum"), the units ordered per collection on lines not
cancelled, and the SKU's ATS by the partner's mode. For every placement it decides on its own whether the rules
must refuse it (InvalidOrder, then InsufficientStock, then CapReached) and the engine must refuse exactly then.
After every step the store holds what the model holds (stock and allocation, cap settings, units ordered per
collection), the channels of the pools read through `queries.channel` as the model says, and every queued channel
ATS is the current one; after every placement no collection it touched holds more than its cap, and no SKU's ATS
went below zero because of it.

The modes are `advanced` and `simple` with pending_allocation false: in the latter a pending order does not
shrink the SKU's ATS, so the caps are the only thing that limits a collection until orders are confirmed.

One SQLite file serves a whole test; each example gets a fresh partner in it, so no example sees another's data.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, settings
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
from gateway.domain.caps import CapReached
from gateway.domain.errors import IllegalTransition, InsufficientStock, InvalidOrder
from gateway.domain.instant import parse
from gateway.domain.modes import StockMode
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.service import channels, queries
from gateway.service.commands import Commands
from gateway.settings import PartnerSettings, Settings
from tests.conftest import AppFactory, FakeClock

pytestmark = pytest.mark.both_stores

S = OrderStatus
SKUS = ("A", "B")
ASSEMBLIES = ("paris-11", "lyon-3")
# The same collection names in both assemblies: a setting or an order in one must never show in the other.
COLLECTIONS = ("2026-12-01", "2026-12-08", "2026-12-15")
ALL = "*"  # the outbox key of an assembly-wide setting (what a collection with no override and no orders may take)
CHANNELS = [(assembly, collection) for assembly in ASSEMBLIES for collection in COLLECTIONS]

# every channel key the outbox may hold: the pool's channels and the assembly-wide settings
KEYS = {(sku, assembly, collection) for sku in SKUS for assembly in ASSEMBLIES for collection in (*COLLECTIONS, ALL)}

T0 = parse("2026-01-01T00:00:00Z")
HOUR = 3_600_000_000
# caps of 0..8 units, and now and then None: "no maximum" (one collection) or no default (all collections)
LIMITS = st.sampled_from([None, None, *range(9)])
STATUSES = st.sampled_from((S.CONFIRMED, S.CANCELLED, S.INVOICING, S.CLOSED, S.PENDING))
# Where a line goes: mostly a channel, sometimes no assembly at all, now and then half a channel (impossible).
WHERE: st.SearchStrategy[tuple[str | None, str | None]] = st.sampled_from(
    [*CHANNELS, *CHANNELS, (None, None), (None, None), (None, None), (ASSEMBLIES[0], None)],
)

MODES = {
    "advanced": PartnerSettings(stock_mode=StockMode.ADVANCED),
    "simple_pending_off": PartnerSettings(stock_mode=StockMode.SIMPLE, pending_allocation=False),
}

STATEFUL_SETTINGS = settings(
    max_examples=120,  # per mode; with PostgreSQL beside it the suite stays under 10 minutes on 2 cores
    stateful_step_count=20,
    deadline=None,
    report_multiple_bugs=False,  # one failure, shrunk: each example costs real transactions
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_partner_numbers = itertools.count(1)


def _settings_for(backend: str) -> settings:
    """Every example on SQLite; on PostgreSQL (a network round trip per statement) enough to show the same SQL
    means the same rules there, within the suite's time."""
    return STATEFUL_SETTINGS if backend == "sqlite" else settings(STATEFUL_SETTINGS, max_examples=6)


# ---------------------------------------------------------------------------------------------------------------
# The model: DOMAIN.md, read literally.

_OPEN = (S.PENDING, S.CONFIRMED, S.INVOICING)
_RANK = {S.PENDING: 0, S.CONFIRMED: 1, S.INVOICING: 2, S.CLOSED: 3}

Line = tuple[str, int, str | None, str | None]  # sku, quantity, assembly, collection


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
    lines: dict[str, tuple[int, str | None, str | None]]  # sku -> merged quantity, assembly, collection


@dataclass
class Model:
    mode: StockMode  # advanced, or simple with pending_allocation false
    stock: dict[str, int] = field(default_factory=dict)
    orders: dict[str, ModelOrder] = field(default_factory=dict)
    defaults: dict[tuple[str, str], int] = field(default_factory=dict)  # (sku, assembly) -> assembly default
    overrides: dict[tuple[str, str], dict[str, int | None]] = field(default_factory=dict)  # None: no maximum
    published: set[tuple[str, str, str]] = field(default_factory=set)  # channels that must have a value queued

    # SKU ATS per mode

    def sku_ats(self, sku: str) -> int:
        """Stock level minus allocation (may be negative)."""
        level = self.stock.get(sku, 0)
        if self.mode == StockMode.SIMPLE:
            return level  # pending_allocation false: allocation = 0 (the platform moves stock itself)
        # advanced: allocation = quantities of lines in pending, confirmed or invoicing
        return level - sum(
            order.lines[sku][0] for order in self.orders.values() if order.status in _OPEN and sku in order.lines
        )

    # caps

    def effective(self, sku: str, assembly: str, collection: str) -> tuple[int | None, str]:
        """The collection's own setting if any, else the assembly default, else none (and where it comes from)."""
        own = self.overrides.get((sku, assembly), {})
        if collection in own:
            return own[collection], "collection override"
        if (sku, assembly) in self.defaults:
            return self.defaults[(sku, assembly)], "assembly default"
        return None, "none"

    def set_cap(self, sku: str, assembly: str, collection: str | None, limit: int | None) -> None:
        if collection is None:
            # Apply to all: the default (None: no default), every per-collection setting cleared.
            if limit is None:
                self.defaults.pop((sku, assembly), None)
            else:
                self.defaults[(sku, assembly)] = limit
            self.overrides.pop((sku, assembly), None)
            self.published.add((sku, assembly, ALL))
        else:
            self.overrides.setdefault((sku, assembly), {})[collection] = limit
            self.published.add((sku, assembly, collection))

    def ordered(self, sku: str, assembly: str, collection: str) -> int:
        """Units of the SKU on lines not cancelled in the collection."""
        return sum(
            order.lines[sku][0]
            for order in self.orders.values()
            if order.status != S.CANCELLED and sku in order.lines and order.lines[sku][1:] == (assembly, collection)
        )

    def settings(self) -> dict[tuple[str, str], tuple[int | None, dict[str, int | None]]]:
        """Every cap setting held: (sku, assembly) -> (assembly default, per-collection overrides)."""
        keys = {key for key, own in self.overrides.items() if own} | set(self.defaults)
        return {key: (self.defaults.get(key), dict(self.overrides.get(key, {}))) for key in keys}

    def ordered_everywhere(self) -> dict[tuple[str, str, str], int]:
        """Units ordered per (sku, assembly, collection) on lines not cancelled, where there are any."""
        found: dict[tuple[str, str, str], int] = {}
        for order in self.orders.values():
            if order.status == S.CANCELLED:
                continue
            for sku, (quantity, assembly, collection) in order.lines.items():
                if assembly is not None and collection is not None:
                    found[(sku, assembly, collection)] = found.get((sku, assembly, collection), 0) + quantity
        return found

    def view(self, sku: str, assembly: str, collection: str) -> tuple[int, int | None, str, int]:
        """What `queries.channel` must show of a channel: ATS, cap, where the cap comes from, units ordered."""
        cap, source = self.effective(sku, assembly, collection)
        return self.channel_ats(sku, assembly, collection), cap, source, self.ordered(sku, assembly, collection)

    def channel_ats(self, sku: str, assembly: str, collection: str) -> int:
        """max(0, min(ATS of the SKU, effective cap - units already ordered)); no cap: max(0, ATS)."""
        cap, _ = self.effective(sku, assembly, collection)
        ats = self.sku_ats(sku)
        if cap is None:
            return max(0, ats)
        return max(0, min(ats, cap - self.ordered(sku, assembly, collection)))

    # placements

    @staticmethod
    def merge(lines: list[Line]) -> dict[str, tuple[int, str | None, str | None]] | None:
        """One line per SKU (same SKU, same channel: merged); None when the lines are impossible."""
        merged: dict[str, tuple[int, str | None, str | None]] = {}
        for sku, quantity, assembly, collection in lines:
            if (assembly is None) != (collection is None) or quantity < 1:
                return None
            held = merged.get(sku)
            if held is None:
                merged[sku] = (quantity, assembly, collection)
            elif held[1:] != (assembly, collection):
                return None
            else:
                merged[sku] = (held[0] + quantity, assembly, collection)
        return merged

    def cap_shortages(
        self, merged: dict[str, tuple[int, str | None, str | None]]
    ) -> dict[tuple[str, str], set[tuple[str, int, int, int | None, int]]]:
        """Per channel, the lines asking for more than its channel ATS: (sku, requested, available, cap, ordered)."""
        found: dict[tuple[str, str], set[tuple[str, int, int, int | None, int]]] = {}
        for sku, (quantity, assembly, collection) in merged.items():
            if assembly is None or collection is None:
                continue
            room = self.channel_ats(sku, assembly, collection)
            if quantity > room:
                cap, _ = self.effective(sku, assembly, collection)
                shortage = (sku, quantity, room, cap, self.ordered(sku, assembly, collection))
                found.setdefault((assembly, collection), set()).add(shortage)
        return found

    def move(self, order_id: str, status: OrderStatus) -> None:
        """A legal status move; simple mode moves stock on confirmation and on cancelling a confirmed line."""
        order = self.orders[order_id]
        current = order.status
        if self.mode == StockMode.SIMPLE and current != status:
            for sku, (quantity, _, _) in order.lines.items():
                if current == S.PENDING and status in (S.CONFIRMED, S.INVOICING, S.CLOSED):
                    self.stock[sku] = self.stock.get(sku, 0) - quantity
                elif current in (S.CONFIRMED, S.INVOICING) and status == S.CANCELLED:
                    self.stock[sku] = self.stock.get(sku, 0) + quantity
        order.status = status


def _due_when(shown: tuple[int, int | None, str, int]) -> tuple[int | None, int | None, str, int]:
    """What makes a channel due to be read again: all it shows, but the ATS of a channel with no cap."""
    ats, cap, source, ordered = shown
    return (ats if cap is not None else None), cap, source, ordered


# ---------------------------------------------------------------------------------------------------------------
# The machine.


class CapsMachine(RuleBasedStateMachine):
    """Commands through the app's `Commands` on a real store; the model says what must happen."""

    def __init__(self, shared: bootstrap.App, clock: FakeClock, partner: PartnerSettings) -> None:
        super().__init__()
        self.clock = clock
        self.partner = f"caps{next(_partner_numbers)}"
        config = Settings(store=shared.settings.store, partners={self.partner: partner})
        bootstrap.sync_partners(shared.store, config, clock)
        # the store and the commands of an app configured with this partner alone (all this test needs of one)
        self.store = shared.store
        self.commands = Commands(shared.store, config, clock)
        self.model = Model(partner.stock_mode)
        self.snapshots = 0  # every snapshot is stamped an hour after the one before: it always applies
        self.placements = 0
        # per channel, what the model said it shows (see _due_when) when it was last read through queries.channel
        self.seen: dict[tuple[str, str, str], tuple[int | None, int | None, str, int]] = {}

    # helpers

    def _set_stock(self, sku: str, quantity: int) -> None:
        self.clock.advance()
        self.snapshots += 1
        self.commands.set_stock(self.partner, sku, quantity, T0 + self.snapshots * HOUR)
        self.model.stock[sku] = quantity

    # rules

    @initialize(levels=st.lists(st.integers(0, 25), min_size=len(SKUS), max_size=len(SKUS)))
    def first_snapshot(self, levels: list[int]) -> None:
        for sku, quantity in zip(SKUS, levels, strict=True):
            self._set_stock(sku, quantity)

    @rule(sku=st.sampled_from(SKUS), quantity=st.integers(0, 25))
    def set_stock(self, sku: str, quantity: int) -> None:
        self._set_stock(sku, quantity)

    @rule(
        sku=st.sampled_from(SKUS),
        assembly=st.sampled_from(ASSEMBLIES),
        collection=st.sampled_from(COLLECTIONS) | st.none(),
        limit=LIMITS,
    )
    def set_cap(self, sku: str, assembly: str, collection: str | None, limit: int | None) -> None:
        """One collection (a number or no maximum), or all collections of the assembly."""
        self.clock.advance()
        self.commands.set_cap(self.partner, sku, assembly, collection, limit)
        self.model.set_cap(sku, assembly, collection, limit)

    @rule(data=st.data(), quantities=st.lists(st.integers(1, 6), min_size=1, max_size=2))
    def place(self, data: st.DataObject, quantities: list[int]) -> None:
        """One or two lines; a second line of the same SKU mostly goes to the same place (merged).

        Half the time a line goes to a collection that has a cap in force, so that caps are often reached.
        """
        lines: list[Line] = []
        for quantity in quantities:
            sku = data.draw(st.sampled_from(SKUS), label="sku")
            same = [line[2:] for line in lines if line[0] == sku]
            if same and data.draw(st.integers(0, 3), label="elsewhere") > 0:
                where = same[0]  # merged with the first line
            else:
                capped = [c for c in CHANNELS if self.model.effective(sku, *c)[0] is not None]
                where = data.draw(st.sampled_from(capped) | WHERE if capped else WHERE, label="where")
            lines.append((sku, quantity, *where))
        self._place(lines)

    @precondition(lambda self: self.model.defaults or any(self.model.overrides.values()))
    @rule(data=st.data(), sku=st.sampled_from(SKUS), delta=st.sampled_from((0, 1, -1)))
    def place_at_the_cap(self, data: st.DataObject, sku: str, delta: int) -> None:
        """One line in a capped collection for just what it may still take, one more, or one less."""
        capped = [c for c in CHANNELS if self.model.effective(sku, *c)[0] is not None] or CHANNELS
        assembly, collection = data.draw(st.sampled_from(capped), label="where")
        quantity = max(1, self.model.channel_ats(sku, assembly, collection) + delta)
        self._place([(sku, quantity, assembly, collection)])

    def _place(self, lines: list[Line]) -> None:
        self.clock.advance()
        self.placements += 1
        order_id = f"O{self.placements}"
        requested = [RequestedLine(*line) for line in lines]
        merged = self.model.merge(lines)
        if merged is None:
            event("placement: invalid")
            with pytest.raises(InvalidOrder):
                self.commands.place(self.partner, order_id, requested)
            return
        short = {sku: (q, self.model.sku_ats(sku)) for sku, (q, _, _) in merged.items() if q > self.model.sku_ats(sku)}
        if short:
            event("placement: insufficient stock")
            with pytest.raises(InsufficientStock) as refused:
                self.commands.place(self.partner, order_id, requested)
            assert {s.sku: (s.requested, s.available) for s in refused.value.shortages} == short
            return
        over_cap = self.model.cap_shortages(merged)
        if over_cap:
            event("placement: cap reached")
            with pytest.raises(CapReached) as capped:
                self.commands.place(self.partner, order_id, requested)
            channel = (capped.value.assembly, capped.value.collection)
            assert channel in over_cap, (channel, over_cap)
            reported = {(s.sku, s.requested, s.available, s.cap, s.ordered) for s in capped.value.shortages}
            assert reported == over_cap[channel]
            return
        event("placement: placed")
        before = {sku: self.model.sku_ats(sku) for sku in SKUS}  # the store's, as checked after the last step
        self.commands.place(self.partner, order_id, requested)
        self.model.orders[order_id] = ModelOrder(S.PENDING, merged)
        for sku, (_, assembly, collection) in merged.items():
            if assembly is not None and collection is not None:
                self.model.published.add((sku, assembly, collection))
        self._check_placement(merged, before)

    def _check_placement(self, merged: dict[str, tuple[int, str | None, str | None]], before: dict[str, int]) -> None:
        """No cap overrun in the collections it touched; no SKU driven below zero by it; other SKUs untouched."""
        with self.store.read() as tx:
            after = {view.sku: view.stock - view.allocated for view in queries.ats(tx, self.partner, list(SKUS))}
            for sku, (_, assembly, collection) in merged.items():
                if assembly is None or collection is None:
                    continue
                view = queries.channel(tx, self.partner, sku, assembly, collection)
                cap, _ = self.model.effective(sku, assembly, collection)
                assert view.cap == cap
                if cap is not None:
                    assert view.ordered <= cap, (sku, assembly, collection, view)
        for sku in SKUS:
            if sku in merged:
                assert after[sku] >= 0, (sku, before[sku], after[sku])
            else:
                assert after[sku] == before[sku], sku

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data(), status=STATUSES)
    def set_status(self, data: st.DataObject, status: OrderStatus) -> None:
        """Any order to any status: illegal moves are refused and change nothing."""
        order_id = data.draw(st.sampled_from(sorted(self.model.orders)), label="order_id")
        self._set_status(order_id, status)

    @precondition(lambda self: any(order.status in _OPEN for order in self.model.orders.values()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """An order still open is cancelled: its units leave their collections."""
        open_orders = sorted(order_id for order_id, order in self.model.orders.items() if order.status in _OPEN)
        self._set_status(data.draw(st.sampled_from(open_orders), label="order_id"), S.CANCELLED)

    def _set_status(self, order_id: str, status: OrderStatus) -> None:
        self.clock.advance()
        current = self.model.orders[order_id].status
        if not legal(current, status):
            with pytest.raises(IllegalTransition):
                self.commands.set_status(self.partner, order_id, status)
            return
        self.commands.set_status(self.partner, order_id, status)
        self.model.move(order_id, status)

    # what must hold after every step

    @invariant()
    def store_agrees_with_model(self) -> None:
        """The store holds what the model holds; every queued channel ATS is the current one.

        At each step the inputs a channel is computed from (each SKU's stock and allocation, the stored cap
        settings, the units ordered per collection) are compared with the model for the whole pool, and every
        channel is read through `queries.channel` (ATS, cap, where it comes from, ordered, SKU ATS) at the first
        step, then again whenever its cap, where it comes from or its ordered units change, or, under a cap, its
        ATS. (An uncapped channel's ATS is the SKU's own, checked at every step; a channel ordered into or given
        a setting has its ATS checked in the outbox at every step.) Reading every channel at every step would
        double the run time.
        """
        model = self.model
        due = [
            (key, due_when)
            for sku in SKUS
            for assembly, collection in CHANNELS
            if self.seen.get(key := (sku, assembly, collection)) != (due_when := _due_when(model.view(*key)))
        ]
        with self.store.read() as tx:
            partner_id = tx.partners.id_of(self.partner)
            views = [queries.channel(tx, self.partner, *key) for key, _ in due]
            skus = {view.sku: view for view in queries.ats(tx, self.partner, list(SKUS))}
            settings = tx.caps.get(partner_id, list(SKUS))
            records = tx.caps.channels(partner_id, list(SKUS))
            queued = [m for m in tx.outbox.rows(partner_id) if m.kind == "channel_ats"]

        for sku in SKUS:
            assert (skus[sku].stock, skus[sku].stock - skus[sku].allocated) == (
                model.stock.get(sku, 0),
                model.sku_ats(sku),
            ), sku
        stored_settings = {
            key: (held.default, dict(held.overrides))
            for key, held in settings.items()
            if held.default is not None or held.overrides
        }
        assert stored_settings == model.settings()
        stored_ordered = {(r.sku, r.assembly, r.collection): r.ordered for r in records if r.ordered}
        assert stored_ordered == model.ordered_everywhere()

        self._check_views(views)
        self.seen.update(due)

        # Pending channel values: one per key, each the current channel ATS of its key.
        keys = [tuple(json.loads(m.key)) for m in queued]
        assert len(keys) == len(set(keys)), "channel ATS messages are not coalesced per channel"
        values = {key: m.value for key, m in zip(keys, queued, strict=True)}
        for key, value in values.items():
            sku, assembly, collection = key
            assert key in KEYS, key
            assert value == model.channel_ats(sku, assembly, collection), key
        # Every channel capped or ordered into has had its value queued.
        assert model.published <= set(values), model.published - set(values)

    def _check_views(self, views: list[channels.ChannelView]) -> None:
        for view in views:
            key = (view.sku, view.assembly, view.collection)
            expected = (*self.model.view(*key), self.model.sku_ats(view.sku))
            assert (view.ats, view.cap, view.source, view.ordered, view.sku_ats) == expected, key


@pytest.mark.parametrize("mode", list(MODES))
def test_caps_follow_the_model(mode: str, make_app: AppFactory, clock: FakeClock, store_backend: str) -> None:
    """Random snapshots, cap settings, placements in channels and status moves keep store and model equal."""
    shared = make_app(unused={"stock_mode": "simple"})  # the store file; each example adds its own partner
    run_state_machine_as_test(lambda: CapsMachine(shared, clock, MODES[mode]), settings=_settings_for(store_backend))
