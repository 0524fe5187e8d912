"""Commands from people and the platform: each one is one transaction through the engine, logged."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway import logs
from gateway.domain.errors import Refusal
from gateway.domain.instant import Instant
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.service.engine import AtsChange, Engine, StockInput
from gateway.settings import Settings
from gateway.store.port import Store, Transaction
from gateway.store.retry import RETRIES, retried

log = logs.get(__name__)


class Commands:
    """Place and move orders, record confirmations, set stock levels.

    Each command is one transaction, run again (up to `retries` times) when the database rolled it back to untie
    it from another; with `wait`, StoreBusy when the store's writer is not free within that many seconds."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], Instant],
        *,
        wait: float | None = None,
        retries: int = RETRIES,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.wait = wait
        self.retries = retries

    def waiting(self, seconds: float | None) -> Commands:
        """The same commands, each waiting at most `seconds` for the store's writer (None: as long as it takes)."""
        return Commands(self.store, self.settings, self.clock, wait=seconds, retries=self.retries)

    def _run(
        self,
        partner: str,
        event: str,
        action: Callable[[Engine], object],
        also: Callable[[Transaction, list[AtsChange]], None] | None = None,
        before: Callable[[Transaction], None] | None = None,
        **context: object,
    ) -> list[AtsChange]:
        policy = self.settings.partner(partner).policy
        bound = log.bind(partner=partner, **context)

        def run() -> Engine:
            with self.store.write(wait=self.wait) as tx:
                if before is not None:  # may end the command before it starts (the platform's idempotency check)
                    before(tx)
                engine = Engine(tx, partner, policy, self.clock(), clock=self.clock)
                action(engine)
                if also is not None:  # in the same transaction (the platform keeps its answer with the order)
                    also(tx, list(engine.changes.values()))
            return engine

        try:
            engine = retried(run, what=event, retries=self.retries, context={"partner": partner, **context})
        except Refusal as refusal:
            bound.warning("command_refused", command=event, code=refusal.code, reason=str(refusal))
            raise
        changes = list(engine.changes.values())
        bound.info(event, ats_changes=len(changes))
        return changes

    def place(
        self,
        partner: str,
        order_id: str,
        lines: Sequence[RequestedLine],
        also: Callable[[Transaction, list[AtsChange]], None] | None = None,
        before: Callable[[Transaction], None] | None = None,
    ) -> list[AtsChange]:
        """Place an order (all lines or none); `before` and `also` run in its transaction, before and after."""
        return self._run(partner, "order_placed", lambda e: e.place(order_id, lines), also, before, order_id=order_id)

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
        """Record the partner's confirmed quantity for one line."""
        return self._run(
            partner,
            "order_confirmed",
            lambda e: e.confirm(order_id, sku, quantity, at),
            order_id=order_id,
            sku=sku,
        )

    def set_cap(
        self, partner: str, sku: str, assembly: str, collection: str | None, limit: int | None
    ) -> list[AtsChange]:
        """Cap one collection, or all collections of the assembly (`collection=None`); `limit=None`: no maximum."""
        return self._run(
            partner,
            "cap_set",
            lambda e: e.set_cap(sku, assembly, collection, limit),
            sku=sku,
            assembly=assembly,
            collection=collection or "*",
            max=limit,
        )

    def set_stock(self, partner: str, sku: str, quantity: int, as_of: Instant | None) -> list[AtsChange]:
        """Set one SKU's stock level as a one-row snapshot (stale if older than its inventory timestamp)."""
        moment = as_of if as_of is not None else self.clock()

        def apply(engine: Engine) -> None:
            if engine.apply_stock([StockInput(sku, quantity, moment)]).skipped:
                raise StaleStock(sku)

        return self._run(partner, "stock_set", apply, sku=sku)


class StaleStock(Refusal):
    """A stock level older than the SKU's inventory timestamp: not applied."""

    code = "stale"

    def __init__(self, sku: str) -> None:
        super().__init__(sku)
        self.sku = sku

    def message(self) -> str:
        return f"SKU {self.sku}: the level is older than the current inventory timestamp; not applied (stale)"
