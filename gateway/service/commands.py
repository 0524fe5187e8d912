"""Commands from people and the platform: each one is one transaction through the engine, logged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import date
from typing import TypeVar

from gateway import logs
from gateway.domain.days import CollectionDates
from gateway.domain.errors import Refusal
from gateway.domain.instant import Instant
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.service import at_once, collections
from gateway.service.channels import CapEdit
from gateway.service.engine import Engine
from gateway.service.items import ItemWarning, log_warnings, snapshot_warnings
from gateway.service.oversold import OversoldReport, log_oversold
from gateway.service.snapshots import AtsChange, StockInput
from gateway.settings import Settings
from gateway.store.port import Store, UnitOfWork
from gateway.store.retry import RETRIES, retried

log = logs.get(__name__)
_T = TypeVar("_T")

# where a command was given, as an order's history names it: the command line, or the platform API
CLI = "cli"
API = "api"


@dataclass(eq=False)
class Commands:
    """Place and move orders, record confirmations, set stock levels.

    Each command is one transaction, run again (up to `retries` times) when the database rolled it back to untie
    it from another; with `wait`, StoreBusy when the store's writer is not free within that many seconds. `origin`
    says where the commands are given (CLI, API): an order's history names it for each move a command made."""

    store: Store
    settings: Settings
    clock: Callable[[], Instant]
    _: KW_ONLY
    wait: float | None = None
    retries: int = RETRIES
    origin: str = CLI

    def waiting(self, seconds: float | None) -> Commands:
        """The same commands, each waiting at most `seconds` for the store's writer (None: as long as it takes)."""
        return replace(self, wait=seconds)

    def given_on(self, origin: str) -> Commands:
        """The same commands, given on `origin` (CLI, API)."""
        return replace(self, origin=origin)

    def engine(self, tx: UnitOfWork, partner: str) -> Engine:
        """The engine of one command of `partner` in `tx`, at the clock's now."""
        settings = self.settings.partner(partner)
        return Engine(
            tx, partner, settings.policy, self.clock(), clock=self.clock, command=self.origin, zone=settings.zone
        )

    def transaction(self, partner: str, event: str, work: Callable[[UnitOfWork], _T], **context: object) -> _T:
        """`work` in one write transaction, run again while the database rolls it back to untie it from another;
        a refusal is logged (`command_refused`) and raised, nothing of it kept."""
        self.settings.partner(partner)  # an unknown partner fails before any transaction

        def run() -> _T:
            with self.store.write(wait=self.wait) as tx:
                return work(tx)

        try:
            return retried(run, what=event, retries=self.retries, context={"partner": partner, **context})
        except Refusal as refusal:
            bound = log.bind(partner=partner, **context)
            bound.warning("command_refused", command=event, code=refusal.code, reason=str(refusal))
            raise

    def _run(self, partner: str, event: str, action: Callable[[Engine], object], **context: object) -> list[AtsChange]:
        def work(tx: UnitOfWork) -> tuple[list[AtsChange], OversoldReport]:
            engine = self.engine(tx, partner)
            action(engine)
            return list(engine.changes.values()), engine.oversold.report()

        changes, made_oversold = self.transaction(partner, event, work, **context)
        bound = log.bind(partner=partner, **context)
        log_oversold(made_oversold, bound)
        bound.info(event, ats_changes=len(changes))
        return changes

    def place(
        self, partner: str, order_id: str, lines: Sequence[RequestedLine], wanted_on: date | None = None
    ) -> list[AtsChange]:
        """Place an order (all lines or none), its lines wanted on `wanted_on` (None: today, or their collection's
        pickup date); with an Idempotency-Key, gateway.service.orders.place. In one statement where the store can
        (see at_once), else through the engine."""
        decided = self.place_at_once(partner, order_id, lines, wanted_on=wanted_on)
        if decided is not None:
            log.bind(partner=partner, order_id=order_id).info(at_once.EVENT, ats_changes=len(decided.changes))
            return decided.changes
        action = lambda e: e.place(order_id, lines, wanted_on=wanted_on)  # noqa: E731 - one line reads best
        return self._run(partner, at_once.EVENT, action, order_id=order_id)

    def place_at_once(
        self,
        partner: str,
        order_id: str,
        lines: Sequence[RequestedLine],
        key: str | None = None,
        digest: str | None = None,
        *,
        wanted_on: date | None = None,
    ) -> at_once.Decided | None:
        """Place the order in one statement where the store can, at the clock's now (see at_once): what the store
        decided, a Refusal raised, or None when the engine is to place it (nothing was written)."""
        policy = self.settings.partner(partner).policy  # an unknown partner fails here
        if wanted_on is not None:
            return None  # a dated order: its ATP check is the engine's (see service.demand)
        placement = at_once.request(
            partner, order_id, lines, policy=policy, now=self.clock(), command=self.origin, key=key, digest=digest
        )
        if placement is None:
            return None
        return at_once.place(self.store, placement, retries=self.retries)

    def set_status(self, partner: str, order_id: str, status: OrderStatus) -> list[AtsChange]:
        """Move an order to `status`."""
        return self._run(
            partner,
            "order_status_set",
            lambda e: e.set_status(order_id, status),
            order_id=order_id,
            status=status.value,
        )

    def confirm(self, partner: str, order_id: str, sku: str, quantity: int, at: Instant) -> list[AtsChange]:
        """Record the partner's confirmed quantity for one line (above the ordered one only where allowed)."""
        allow_above = self.settings.partner(partner).allow_over_confirmation
        return self._run(
            partner,
            "order_confirmed",
            lambda e: e.confirm(order_id, sku, quantity, at, allow_above=allow_above),
            order_id=order_id,
            sku=sku,
        )

    def _cap(self, partner: str, event: str, action: Callable[[Engine], CapEdit], **context: object) -> CapDone:
        def work(tx: UnitOfWork) -> CapDone:
            engine = self.engine(tx, partner)
            edit = action(engine)
            return CapDone(edit, list(engine.changes.values()))

        done = self.transaction(partner, event, work, **context)
        erased = [e.collection for e in done.edit.erased]
        over = [o.collection for o in done.edit.over_cap]
        ongoing = list(done.edit.ongoing)
        log.bind(partner=partner, **context).info(
            event, ats_changes=len(done.changes), erased=erased, over_cap=over, ongoing=ongoing
        )
        return done

    def set_cap(self, partner: str, sku: str, assembly: str, collection: str | None, limit: int | None) -> CapDone:
        """Cap one collection, or all collections of the assembly (`collection=None`, which erases every
        collection's own setting); `limit=None`: no maximum. Says what it erased and what is now over its cap."""
        return self._cap(
            partner,
            "cap_set",
            lambda e: e.set_cap(sku, assembly, collection, limit),
            sku=sku,
            assembly=assembly,
            collection=collection or "*",
            max=limit,
        )

    def clear_cap(self, partner: str, sku: str, assembly: str, collection: str) -> CapDone:
        """Return one collection to the assembly default: its own setting (if any) erased, its channel ATS queued
        again when that moves it. Clearing a collection with no setting of its own erases nothing."""
        return self._cap(
            partner,
            "cap_cleared",
            lambda e: e.clear_cap(sku, assembly, collection),
            sku=sku,
            assembly=assembly,
            collection=collection,
        )

    def set_collection(
        self, partner: str, assembly: str, collection: str, dates: CollectionDates
    ) -> collections.CollectionDone:
        """Replace one collection's dates (all None: it has none any more): when it takes orders and its pickup
        date. A window closing at or before it opens is refused; orders already placed in it stay."""
        context = {"assembly": assembly, "collection": collection}

        def work(tx: UnitOfWork) -> collections.CollectionDone:
            return collections.set_dates(tx, tx.partners.id_of(partner), assembly, collection, dates, self.clock())

        done = self.transaction(partner, "collection_set", work, **context)
        log.bind(partner=partner, **context).info("collection_set", open_now=done.line.open_now)
        return done

    def set_stock(self, partner: str, sku: str, quantity: int, as_of: Instant | None) -> StockSet:
        """Set one SKU's stock level as a one-row snapshot (stale if older than its inventory timestamp); a level
        older than a confirmation applied for the SKU applies with a warning, logged and returned, as a file's."""
        moment = as_of if as_of is not None else self.clock()
        warned: list[ItemWarning] = []

        def apply(engine: Engine) -> None:
            if engine.apply_stock([StockInput(sku, quantity, moment)]).skipped:
                raise StaleStock(sku)
            warned[:] = snapshot_warnings(engine)  # this run's (a run rolled back and run again replaces them)

        changes = self._run(partner, "stock_set", apply, sku=sku)
        log_warnings(warned, log.bind(partner=partner, sku=sku))
        return StockSet(changes, warned)


@dataclass(frozen=True)
class StockSet:
    """What setting a stock level did: the ATS values it moved, and its warnings (it applied all the same)."""

    changes: list[AtsChange]
    warnings: list[ItemWarning] = field(default_factory=list)


@dataclass(frozen=True)
class CapDone:
    """A cap command's answer: what it did to the caps (gateway.service.channels.CapEdit) and the ATS it moved."""

    edit: CapEdit
    changes: list[AtsChange]


@dataclass(eq=False)
class StaleStock(Refusal):
    """A stock level older than the SKU's inventory timestamp: not applied."""

    code = "stale"
    sku: str

    def message(self) -> str:
        return f"SKU {self.sku}: the level is older than the current inventory timestamp; not applied (stale)"
