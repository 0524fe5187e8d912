"""The allocation engine on a store transaction.

It keeps each SKU's cached allocation exact by applying the domain's per-line allocation before and after
every change (a placement, a status move, a confirmation, a snapshot that moves the inventory timestamp),
and queues the published ATS in the same transaction whenever it changes. Every method checks everything it
will refuse before it writes anything, so a Refusal never leaves a half-applied command behind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, tzinfo

from gateway.domain import allocation as rules
from gateway.domain import days, guards
from gateway.domain.allocation import Line
from gateway.domain.balance import CumulativeBalance
from gateway.domain.errors import OrderExists, UnknownLine, UnknownOrder
from gateway.domain.instant import Instant
from gateway.domain.modes import Policy
from gateway.domain.orders import RequestedLine, merge_lines
from gateway.domain.status import OrderStatus, check_transition
from gateway.formats.stock_rows import PlainLevels
from gateway.service import collections, demand, order_messages, oversold, schedules, snapshots
from gateway.service.channels import CapEdit, ChannelBook, channel_units
from gateway.service.held import HeldBack
from gateway.service.snapshots import SAMPLE, AtsChange, SnapshotOutcome, StockLevel
from gateway.store.port import AtsMessage, LevelLoader, LineRecord, OrderEvent, OrderRecord, StockRecord, UnitOfWork

MAX_TRACKED_CHANGES = 10_000


class Engine:
    """Applies the rules of docs/rules.md for one partner inside one store transaction."""

    def __init__(
        self,
        tx: UnitOfWork,
        partner: str,
        policy: Policy,
        now: Instant,
        ledger_id: int | None = None,
        *,
        clock: Callable[[], Instant] | None = None,
        alone: bool = False,
        command: str | None = None,
        held_back: bool = False,
        zone: tzinfo = UTC,
    ) -> None:
        """`alone`: the transaction holds the partner alone already (an inbound item, see UnitOfWork.lock_partner);
        otherwise each command locks the orders and SKUs it touches first, and with a `clock` its instant is taken
        again after a wait, so the values it queues are stamped in the order they commit. What moves an order is
        kept in its history: the inbound item `ledger_id`, or else the command given on `command` (`cli`, `api`).

        `held_back` (a bundle: several files in one transaction): the ATS values that move are held until
        `publish()`, which queues only those that differ from what they were before the first change; nothing
        in between is ever queued (a SKU moved 10 -> 5 -> 10 queues nothing).

        `zone`: the partner's time zone, whose calendar dates lines are demand on (docs/rules.md, "Dates")."""
        self.tx = tx
        self.zone = zone
        self.partner = partner
        self.partner_id = tx.partners.id_of(partner)
        self.policy = policy
        self.now = now
        self.ledger_id = ledger_id
        self._clock = clock
        self._alone = alone
        self.command = None if ledger_id is not None else command
        # the first MAX_TRACKED_CHANGES SKUs whose published ATS moved (for dry runs and replies), and a count
        self.changes: dict[str, AtsChange] = {}
        self.changed = 0
        self.stale_skus: list[str] = []
        self.predating_skus: list[str] = []  # the first SAMPLE SKUs set by a level older than their last movement
        self.predating = 0  # how many levels were (see domain.allocation.snapshot_predates_movement)
        self._held: HeldBack[Instant | None] | None = HeldBack() if held_back else None
        # held back too: SKUs whose schedule moved while their value did not, and those of them left without dates
        self._schedules_moved: set[str] = set()
        self._schedules_dropped: set[str] = set()
        self._dated_moved: set[str] = set()  # SKUs whose dated demand this item or command moved
        self.channels = ChannelBook(tx, self.partner_id, now, ledger_id, held_back=held_back)
        self.oversold = oversold.Watch()  # SKUs this item or command makes oversold, for the `oversold` event

    # placing orders and moving them

    def place(
        self,
        order_id: str,
        lines: Sequence[RequestedLine],
        status: OrderStatus = OrderStatus.PENDING,
        wanted_on: date | None = None,
    ) -> None:
        """Place an order: every line fits its SKU's ATS, or nothing is placed. Then move it to `status`.

        A line is demand on its collection's pickup date, else on `wanted_on`, else today; a placement that meets a
        date (a dated line, or a SKU with receipts or dated demand) fits each line to the ATP on its date instead
        (see service.demand)."""
        self._hold([order_id], [line.sku for line in lines])
        if self.tx.orders.get(self.partner_id, order_id) is not None:
            raise OrderExists(order_id)
        merged = merge_lines(order_id, lines)
        named = [
            (x.assembly, x.collection) for x in merged.values() if x.assembly is not None and x.collection is not None
        ]
        collections.check_open(self.tx, self.partner_id, order_id, named, self.now)  # before anything is counted
        stock = self._stock(list(merged))
        quantities = {sku: line.quantity for sku, line in merged.items()}
        today = days.today(self.now, self.zone)
        on = demand.line_days(self.tx, self.partner_id, merged, wanted_on, today)
        dated = demand.check(self.tx, self.partner_id, order_id, quantities, on, stock, today)
        ats = {sku: rules.available(rec.quantity, rec.allocated) for sku, rec in stock.items()}
        if dated is None:
            rules.check_placement(order_id, quantities, ats)
        else:
            ats = dated.rooms  # a channel's room stands on the ATP of its line's date
        in_channels: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for sku, requested in merged.items():
            if requested.assembly is not None and requested.collection is not None:
                in_channels[(requested.assembly, requested.collection)][sku] = requested.quantity
        self.channels.check(order_id, in_channels, ats)
        records = [
            LineRecord(
                sku=sku, quantity=line.quantity, assembly=line.assembly, collection=line.collection, demand_on=on[sku]
            )
            for sku, line in sorted(merged.items())
        ]
        self.tx.orders.add(self.partner_id, order_id, OrderStatus.PENDING, records, self.now)
        self._moved(order_id, OrderStatus.PENDING)
        self.channels.add_ordered(channel_units(records, 1))
        dated_moves: list[tuple[str, date | None, int]] = []
        for record in records:
            line = Line(order_id, record.sku, record.quantity, OrderStatus.PENDING)
            current = stock[record.sku]
            units = rules.line_allocation(self.policy, line, current.as_of).units
            current.allocated += units
            dated_moves.append((record.sku, record.demand_on, units))
            if dated is not None:
                dated.placed(record.sku, record.demand_on, units)
        self._move_demand(dated_moves)
        self._save(stock.values(), None if dated is None else dated.balances)
        if status != OrderStatus.PENDING:
            self.set_status(order_id, status)

    def set_status(self, order_id: str, status: OrderStatus) -> bool:
        """Move an order to `status`; return False when it already was there (nothing changes)."""
        self._hold([order_id])  # its status cannot move under us from here on
        order = self._order(order_id)
        check_transition(order_id, order.status, status)
        if order.status == status:
            return False
        self._hold(skus=[line.sku for line in order.lines])
        stock = self._stock([line.sku for line in order.lines])
        dated_moves: list[tuple[str, date | None, int]] = []
        for line in order.lines:
            current = stock[line.sku]
            before = order.domain_line(line)
            after = order.domain_line(line, status)
            current.allocated += (
                rules.line_allocation(self.policy, after, current.as_of).units
                - rules.line_allocation(self.policy, before, current.as_of).units
            )
            if line.demand_on is not None:
                moved = demand.dated_units(self.policy, after, current.as_of)
                dated_moves.append(
                    (line.sku, line.demand_on, moved - demand.dated_units(self.policy, before, current.as_of))
                )
            movement = rules.stock_movement(self.policy, order.status, status, line.quantity)
            current.quantity += movement
            if movement < 0:
                current.last_moved_at = self.now
        self._move_demand(dated_moves)
        self.tx.orders.set_status(self.partner_id, order_id, status, self.now)
        self._moved(order_id, status)
        if status == OrderStatus.CANCELLED:
            self.channels.add_ordered(channel_units(order.lines, -1))  # cancelled lines free cap room
        self._save(stock.values())
        self._queue_order_message(order, status)
        return True

    def confirm(self, order_id: str, sku: str, quantity: int, at: Instant, *, allow_above: bool = False) -> bool:
        """Record the partner's confirmed quantity for a line; return whether it is now the one in force.

        A confirmation stamped earlier than the one in force is kept but does not replace it. One above the
        line's ordered quantity is refused unless `allow_above` (the partner's `allow_over_confirmation`).
        """
        self._hold([order_id], [sku])
        order = self._order(order_id)
        line = order.line(sku)
        if line is None:
            raise UnknownLine(order_id, sku)
        guards.check_confirmed_quantity(order_id, sku, quantity, line.quantity, allow_above=allow_above)
        in_force = line.confirmed_at is None or at >= line.confirmed_at
        self.tx.orders.add_confirmation(self.partner_id, order_id, sku, quantity, at, self.now, in_force=in_force)
        if not in_force:
            return False
        current = self._stock([sku])[sku]
        before = order.domain_line(line)
        after = Line(order_id, sku, line.quantity, order.status, quantity, at)
        current.allocated += (
            rules.line_allocation(self.policy, after, current.as_of).units
            - rules.line_allocation(self.policy, before, current.as_of).units
        )
        if line.demand_on is not None:
            moved = demand.dated_units(self.policy, after, current.as_of)
            self._move_demand([(sku, line.demand_on, moved - demand.dated_units(self.policy, before, current.as_of))])
        self._save([current])
        return True

    # stock levels

    def apply_stock(
        self, rows: Sequence[StockLevel], set_by: int | None = None, *, all_new: bool = False
    ) -> SnapshotOutcome:
        """Set stock levels; stale rows (older than the SKU's inventory timestamp) are skipped.

        Only rows that change something are written, and only published ATS changes are queued. This is the
        hot loop of a million-row snapshot: rules are applied through local names, objects made only for writes.
        `all_new` says the caller knows none of these SKUs has a stock row (a partner's first snapshot). A batch
        read as plainly valid columns (PlainLevels) is first compared by the store, which names the rows that may
        change something: the others become no tuple at all.
        """
        outcome = SnapshotOutcome()
        if not rows:
            return outcome
        if not self._alone:
            self._hold(skus=rows.skus if isinstance(rows, PlainLevels) else [row[0] for row in rows])
        fresh, changed = (rows, []) if all_new else self._fresh_and_changed(rows, outcome)
        # New SKUs hold no lines yet: their ATS is their level. Plain tuples all the way to the driver.
        published = rules.published
        levels = [(sku, quantity, as_of, published(quantity)) for sku, quantity, as_of in fresh]
        messages: list[tuple[str, int, Instant | None]] = [(sku, value, as_of) for sku, _, as_of, value in levels]
        room = MAX_TRACKED_CHANGES - len(self.changes)
        for sku, _, _, value in levels[: max(0, room)]:
            self.changes[sku] = AtsChange(sku, None, value)
        self.changed += len(levels)
        self.tx.stock.insert(self.partner_id, levels, set_by, self.now)
        self._queue_ats(messages, None)
        if self.channels.any():  # skip building the map for a partner without caps (most snapshots)
            self.channels.republish({sku: quantity for sku, quantity, _, _ in levels})
        writes = self._levels_changed(changed, set_by, outcome) if changed else []
        self._save(writes)
        outcome.applied = len(rows) - outcome.skipped
        outcome.written = len(levels) + len(writes)
        return outcome

    def level_loader(self) -> LevelLoader | None:
        """A set-based loader for a whole snapshot, where the store has one and the partner's rules allow it: no
        channel to republish and no closed line that follows the inventory timestamp (else: apply_stock). Never
        while values are held back: the loader's merge queues what moved itself."""
        if self._held is not None or self.policy.closed_may_allocate or self.channels.any():
            return None
        if self.tx.supply.holds(self.partner_id):
            return None  # the merge publishes level - allocation: receipts need the ATP today (appliers.dated)
        return self.tx.stock.level_loader(self.partner_id, self.ledger_id)

    def merge_levels(self, loader: LevelLoader, set_by: int | None) -> SnapshotOutcome:
        """Merge every level streamed into `loader`, as apply_stock would have applied them."""
        room = max(0, MAX_TRACKED_CHANGES - len(self.changes))
        merged = loader.merge(set_by=set_by, now=self.now, moves_stock=self.policy.moves_stock, sample=room)
        for sku, before, after in merged.changes:
            self._note_change(sku, before, after)
        self.oversold.merged(merged.oversold, merged.oversold_count)
        self.changed += merged.changed - len(merged.changes)
        self.stale_skus.extend(merged.stale_sample[: max(0, SAMPLE - len(self.stale_skus))])
        self.predating_skus.extend(merged.predates_sample[: max(0, SAMPLE - len(self.predating_skus))])
        self.predating += merged.predates_movement
        applied = merged.rows - merged.skipped
        return SnapshotOutcome(
            applied=applied, skipped=merged.skipped, written=merged.changed, predates_movement=merged.predates_movement
        )

    # caps

    def set_cap(self, sku: str, assembly: str, collection: str | None, limit: int | None) -> CapEdit:
        """Cap one collection (`collection`) or all collections of the assembly (`collection=None`).

        `limit=None` is "no maximum": for one collection, an explicit override of the assembly default; for
        all collections, no cap anywhere in the assembly.
        """
        self._hold(skus=[sku])
        return self._republished(sku, self.channels.set_cap(sku, assembly, collection, limit))

    def clear_cap(self, sku: str, assembly: str, collection: str) -> CapEdit:
        """Return one collection to the assembly default (nothing changes when it has no setting of its own)."""
        self._hold(skus=[sku])
        return self._republished(sku, self.channels.clear_cap(sku, assembly, collection))

    def _republished(self, sku: str, edit: CapEdit) -> CapEdit:
        """Queue the channel ATS of the SKU's channels that a cap edit moved."""
        record = self._stock([sku])[sku]
        balances = demand.today_balances(self.tx, self.partner_id, [record])
        today = days.today(self.now, self.zone)
        available = balances[sku].room(today) if sku in balances else rules.available(record.quantity, record.allocated)
        self.channels.republish({sku: available}, balances, today)
        return edit

    def _fresh_and_changed(
        self, rows: Sequence[StockLevel], outcome: SnapshotOutcome
    ) -> tuple[list[StockLevel], list[StockLevel]]:
        return snapshots.fresh_and_changed(self.tx, self.partner_id, rows, outcome, self.stale_skus)

    def _levels_changed(
        self, changed: Sequence[StockLevel], set_by: int | None, outcome: SnapshotOutcome
    ) -> list[StockRecord]:
        before = outcome.predates_movement
        writes = snapshots.levels_changed(
            self.tx, self.partner_id, self.policy, self.oversold, changed, set_by, outcome, self.predating_skus
        )
        self.predating += outcome.predates_movement - before
        return writes

    def recompute(self) -> int:
        """Recompute every SKU's allocation from its lines (after a change of stock mode); return SKUs fixed."""
        fixed = snapshots.recomputed(self.tx, self.partner_id, self.policy, self.oversold)
        dated = self.tx.orders.dated_lines(self.partner_id)  # the per-date demand follows the new mode too
        held = self.tx.stock.get(self.partner_id, sorted({line.sku for line, _ in dated})) if dated else {}
        self.tx.supply.replace_demand(self.partner_id, demand.rebuilt(self.policy, dated, held))
        self._dated_moved.update(line.sku for line, _ in dated)
        self._save(fixed)
        return len(fixed)

    # internals

    def _move_demand(self, moves: Iterable[tuple[str, date | None, int]]) -> None:
        """Keep the per-date demand of dated lines whose allocation moved (undated lines: nothing to keep)."""
        changes = demand.moves(moves)
        self._dated_moved.update(sku for sku, _ in changes)
        if changes:
            self.tx.supply.move_demand(self.partner_id, changes)

    def _hold(self, orders: Sequence[str] = (), skus: Sequence[str] = ()) -> None:
        """Lock these orders and SKUs for the rest of the transaction (see UnitOfWork.lock_keys)."""
        if self._alone:
            return
        if self.tx.locks.keys(self.partner_id, orders, skus) and self._clock is not None:
            # stamped after the wait: a value computed later (committed later) never carries an earlier instant
            self.now = self.channels.now = max(self.now, self._clock())

    def _moved(self, order_id: str, status: OrderStatus) -> None:
        """Keep the step in the order's history, with what moved it."""
        self.tx.orders.add_event(self.partner_id, order_id, OrderEvent(status, self.now, self.ledger_id, self.command))

    def _order(self, order_id: str) -> OrderRecord:
        order = self.tx.orders.get(self.partner_id, order_id)
        if order is None:
            raise UnknownOrder(order_id)
        return order

    def _stock(self, skus: Sequence[str]) -> dict[str, StockRecord]:
        found = self.tx.stock.get(self.partner_id, skus)
        for sku in skus:
            if sku not in found:
                found[sku] = StockRecord(sku=sku, quantity=0)
        self.oversold.seen(found.values())
        return found

    def _save(self, records: Iterable[StockRecord], known: dict[str, CumulativeBalance] | None = None) -> None:
        """Write changed stock rows, queue their published ATS where it moved, and their channels' ATS. `known`:
        the balances of every SKU of `records` holding receipts, as the records stand (a dated placement has them
        already), else read here."""
        writes = list(records)
        if not writes:
            return
        messages: list[AtsMessage] = []
        before: list[int | None] = []
        # SKUs with receipts whose value today did not move while their later dates may have: a value held at 0
        # (a level or allocation moved under it), or a dated line moved (today's limit may be an earlier date).
        # Else a moved level or undated allocation moves every balance alike, so today's value too.
        stuck: list[str] = []
        today = days.today(self.now, self.zone)
        balances = known if known is not None else demand.today_balances(self.tx, self.partner_id, writes)
        available = {r.sku: rules.available(r.quantity, r.allocated) for r in writes}
        for sku, balance in balances.items():
            available[sku] = balance.room(today)  # today's ATS is the ATP for today (docs/rules.md)
        for record in writes:
            value = rules.published(available[record.sku])
            if value != record.published:
                self._note_change(record.sku, record.published, value)
                before.append(record.published)
                record.published = value
                messages.append(AtsMessage(record.sku, value, record.as_of))
            elif record.sku in balances and (value == 0 or record.sku in self._dated_moved):
                stuck.append(record.sku)
        self.tx.stock.put(self.partner_id, writes, self.now)
        self.oversold.saved(writes)
        self._queue_ats(messages, before)
        if stuck:
            self.schedules_moved(stuck)
        self.channels.republish(available, balances, today)

    def refresh(self, skus: Sequence[str]) -> None:
        """Publish again these SKUs' ATS from their stock rows as they stand (their receipts moved while their
        level did not: today's ATP may have moved with them)."""
        if skus:
            self._save(self._stock(skus).values())

    def _queue_ats(
        self, messages: Sequence[tuple[str, int, Instant | None]], before: Sequence[int | None] | None
    ) -> None:
        """Queue published ATS values that moved (`before`: each one's previous value; None: new SKUs), or hold
        them back until publish()."""
        if self._held is None:
            self.tx.outbox.queue_ats(self.partner_id, messages, self.ledger_id, self.now)
            return
        for index, (sku, value, as_of) in enumerate(messages):
            self._held.hold(sku, None if before is None else before[index], value, as_of)

    def schedules_moved(self, skus: Sequence[str], dropped: Sequence[str] = ()) -> None:
        """These SKUs' schedules moved (receipts, or a level or allocation under a value that stayed 0): queue
        their ATS again, today's value unchanged, for the schedule sent with it (service.schedules); `dropped`:
        those left without dated supply, owed an empty schedule. Held back until publish() like any value."""
        if self._held is not None:
            self._schedules_moved.update(skus)
            self._schedules_dropped.update(dropped)
            return
        schedules.requeue(self.tx, self.partner_id, skus, dropped, self.ledger_id, self.now)

    def publish(self) -> None:
        """Queue what was held back (see `held_back`): each SKU's and channel's value after everything, where it
        differs from before the first change. The changes reported are those alone."""
        if self._held is None:
            return
        messages = self._held.moved()
        self.tx.outbox.queue_ats(self.partner_id, messages, self.ledger_id, self.now)
        moved, dropped = self._schedules_moved, self._schedules_dropped
        self._schedules_moved, self._schedules_dropped = set(), set()
        schedules.requeue(self.tx, self.partner_id, moved, dropped, self.ledger_id, self.now)
        self.channels.publish()
        self.changes = {sku: change for sku, change in self.changes.items() if change.before != change.after}
        self.changed = len(messages)

    def _note_change(self, sku: str, before: int | None, after: int) -> None:
        self.changed += 1
        first = self.changes.get(sku)
        if first is not None:
            self.changes[sku] = AtsChange(sku, first.before, after)
        elif len(self.changes) < MAX_TRACKED_CHANGES:
            self.changes[sku] = AtsChange(sku, before, after)

    def _queue_order_message(self, order: OrderRecord, status: OrderStatus) -> None:
        message = order_messages.message(order, status, self.now)
        if message is not None:
            kind, payload = message
            self.tx.outbox.queue_message(self.partner_id, kind, order.order_id, payload, self.ledger_id, self.now)
