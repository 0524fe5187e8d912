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

from gateway.store.errors import StoreError
from gateway.store.records import PlaceAtOnce, PlacedAtOnce
from gateway.store.sql.errors import translate_errors
from gateway.store.sql.locks import LockSpace, lock_key

if TYPE_CHECKING:
    from gateway.store.sql.repository import KnownPartners

PLACE = (
    "SELECT outcome, detail FROM gateway_place(%(partner)s, %(order)s, %(skus)s, %(quantities)s, %(units)s, %(now)s,"
    " %(command)s, %(partner_space)s, %(lock_spaces)s, %(lock_keys)s, %(key)s, %(digest)s, %(partner_name)s)"
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
    """Run `gateway_place` for `request` on a connection of the pool, in autocommit (see the module)."""
    skus = [line.sku for line in request.lines]
    with translate_errors(driver_error), engine.connect() as pooled:
        connection = pooled.execution_options(isolation_level="AUTOCOMMIT")
        partner_id = partners.id_of(connection, request.partner)
        spaces, keys = lock_keys(space, partner_id, request.order_id, skus)
        params: dict[str, Any] = {
            "partner": partner_id,
            "order": request.order_id,
            "skus": skus,
            "quantities": [line.quantity for line in request.lines],
            "units": [line.units for line in request.lines],
            "now": request.now,
            "command": request.command,
            "partner_space": space.partner,
            "lock_spaces": spaces,
            "lock_keys": keys,
            "key": request.key,
            "digest": request.digest,
            "partner_name": request.partner,
        }
        row = connection.exec_driver_sql(PLACE, params).one()
    outcome, detail = row
    return _read(str(outcome), detail)


def _read(outcome: str, detail: str | None) -> PlacedAtOnce:
    """The function's answer as a record."""
    found = PlacedAtOnce(outcome)
    if outcome == "placed":
        found.changes = [(str(sku), before, int(after)) for sku, before, after in json.loads(detail or "[]")]
    elif outcome == "short":
        found.shortages = [(str(sku), int(asked), int(ats)) for sku, asked, ats in json.loads(detail or "[]")]
    elif outcome == "replay":
        digest, status, body = json.loads(detail or "[]")
        found.answer = (str(digest), int(status), str(body))
    elif outcome not in ("busy", "general", "exists"):
        raise StoreError(f"gateway_place answered {outcome!r}, which this release does not know")
    return found
