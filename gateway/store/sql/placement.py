"""PostgreSQL's placement in one statement: `gateway_place(...)` (migration 0010) run on its own, in autocommit.

One statement is one round trip and its own transaction: it tries the locks a command takes (the partner shared,
then the order's and the SKUs' keys in one key order, as locks.AdvisoryLocks.keys takes them), checks, and either
writes everything a placement writes or nothing. Locks it cannot take at once, a SKU with channels or without a
stock row: it answers so and writes nothing, and the engine's general path places the order (waiting for the
locks, stamping its instant after the wait). No rollback ever ends it, so the driver keeps its prepared statements.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from gateway.store.errors import StoreContention, StoreError
from gateway.store.records import PlaceAtOnce, PlacedAtOnce
from gateway.store.sql.errors import primary_message, translate, translate_errors
from gateway.store.sql.locks import LockSpace, lock_key

if TYPE_CHECKING:
    from gateway.store.sql.repository import KnownPartners

UNIQUE_VIOLATION = "23505"
# The function runs only for SKUs without receipts or dated demand (a one-time filter, evaluated before it): the
# lines of the others fit the ATP by date, which the engine's path checks (service.demand); no row answers so. The
# filter reads outside the function's locks: a date that appears meanwhile is safe, as the function's check,
# today's ATS (on hand less every allocating line), never promises more than the ATP of any date.
PLACE = (
    "SELECT outcome, detail FROM gateway_place(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "WHERE NOT EXISTS (SELECT 1 FROM supply_receipts WHERE partner_id = %s AND sku = ANY(%s)) "
    "AND NOT EXISTS (SELECT 1 FROM dated_demand WHERE partner_id = %s AND sku = ANY(%s))"
)


def lock_keys(space: LockSpace, partner_id: int, order_id: str, skus: list[str]) -> tuple[list[int], list[int]]:
    """The (space, key) pairs a command placing `order_id` on `skus` holds, in the order it takes them: the order's
    key, then the SKUs' keys ascending (see locks.AdvisoryLocks.keys)."""
    pairs = [(space.orders_of(partner_id), lock_key(order_id))]
    pairs += [(space.skus_of(partner_id), key) for key in sorted({lock_key(sku) for sku in skus})]
    return [ns for ns, _ in pairs], [key for _, key in pairs]


def place_at_once(
    engine: Engine, space: LockSpace, partners: KnownPartners, driver_error: type[Exception], request: PlaceAtOnce
) -> PlacedAtOnce:
    """Run `gateway_place` for `request` on a connection of the pool, in autocommit (see the module).

    On the driver's connection itself: SQLAlchemy's result machinery would cost more than the statement's own
    work. The connection goes back to the pool as it came (not in autocommit); one the server dropped is thrown
    away, and the placement runs again on another (StoreContention: nothing was placed, or it was and the order's
    id now answers so)."""
    partner_id = partners.ids.get(request.partner)
    if partner_id is None:
        with translate_errors(driver_error), engine.connect() as connection:
            partner_id = partners.id_of(connection, request.partner)
    skus = [line.sku for line in request.lines]
    spaces, keys = lock_keys(space, partner_id, request.order_id, skus)
    params = (
        partner_id,
        request.order_id,
        skus,
        [line.quantity for line in request.lines],
        [line.units for line in request.lines],
        request.now,
        request.command,
        space.partner,
        spaces,
        keys,
        request.key,
        request.digest,
        request.partner,
        partner_id,
        skus,
        partner_id,
        skus,
    )
    with translate_errors(driver_error):
        pooled = engine.raw_connection()
    try:
        driver: Any = pooled.driver_connection
        try:
            driver.autocommit = True
            with driver.cursor() as cursor:
                cursor.execute(PLACE, params)
                found = cursor.fetchone()
                if found is None:  # a SKU with dates: the function did not run
                    return PlacedAtOnce("general")
                outcome, detail = found
        except driver_error as exc:
            if driver.broken:
                pooled.invalidate()
                raise StoreContention(
                    f"the connection to the store was lost: {primary_message(exc)}; the placement runs again (an "
                    "order placed before the loss answers that it exists, an Idempotency-Key with its answer)"
                ) from None
            if getattr(exc, "sqlstate", None) == UNIQUE_VIOLATION:
                # another request kept an answer for the same Idempotency-Key meanwhile: nothing was written
                # (the statement is its own transaction); the engine's path reads that answer
                return PlacedAtOnce("general")
            raise translate(exc) from None
        finally:
            if not driver.broken:
                driver.autocommit = False
    finally:
        pooled.close()
    return _read(str(outcome), detail)


def _read(outcome: str, detail: str | None) -> PlacedAtOnce:
    """The function's answer as a record."""
    found = PlacedAtOnce(outcome)
    if outcome == "placed":
        changes, found.body = json.loads(detail or "[[], null]")
        found.changes = [(str(sku), before, int(after)) for sku, before, after in changes]
    elif outcome == "short":
        found.shortages = [(str(sku), int(asked), int(ats)) for sku, asked, ats in json.loads(detail or "[]")]
    elif outcome == "replay":
        digest, status, body = json.loads(detail or "[]")
        found.answer = (str(digest), int(status), str(body))
    elif outcome not in ("busy", "general", "exists"):
        raise StoreError(f"gateway_place answered {outcome!r}, which this release does not know")
    return found
