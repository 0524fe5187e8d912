"""The statements of a command's path (a placement): one row read or written by its key, each built with Core once
and compiled once per database (see statements.compiled), then run with plain tuples.

A statement built with Core at each call costs more than the database's work on it: building, its cache key and
the look-up of its compiled form take about 100 µs in Python, where SQLite answers a look-up by key in a few. A
placement runs a dozen of them. The reads run on the driver's own cursor (no row objects); the writes through
SQLAlchemy's connection, so a uniqueness rule broken is its IntegrityError, the store's Conflict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from gateway.store import schema
from gateway.store.records import LineRecord
from gateway.store.sql.statements import STOCK_COLUMNS

if TYPE_CHECKING:
    from gateway.store.sql.dialects import Dialect

_R = schema.platform_requests
_O = schema.orders
_L = schema.order_lines
_E = schema.order_events
_H = schema.channels
_S = schema.stock
_D = schema.collection_dates
_RC = schema.supply_receipts
_DD = schema.dated_demand

# a stored line's columns, in the order of LineRecord's fields: a row is LineRecord(*row)
LINE_COLUMNS = tuple(_L.c[field.name] for field in fields(LineRecord))
_ORDER = ("partner_id", "order_id")


def _of_order(*columns: Any) -> Any:
    return select(*columns).where(
        columns[0].table.c.partner_id == bindparam("partner_id"), columns[0].table.c.order_id == bindparam("order_id")
    )


def _request_answer(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = select(_R.c.request_sha256, _R.c.status, _R.c.body).where(
        _R.c.partner_id == bindparam("partner_id"), _R.c.key == bindparam("key")
    )
    return statement, ("partner_id", "key")


def _keep_request(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    return _R.insert(), ("partner_id", "key", "request_sha256", "status", "body", "created_at")


def _order_head(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    return _of_order(_O.c.status, _O.c.created_at, _O.c.updated_at), _ORDER


def _order_lines(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    return _of_order(*LINE_COLUMNS).order_by(_L.c.sku), _ORDER


def _add_order(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    return _O.insert(), ("partner_id", "order_id", "status", "created_at", "updated_at")


def _add_lines(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    return _L.insert(), ("partner_id", "order_id", "sku", "quantity", "assembly", "collection", "demand_on")


def _add_event(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    return _E.insert(), ("partner_id", "order_id", "status", "at", "ledger_id", "command")


def _holds_channels(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    return select(_H.c.sku).where(_H.c.partner_id == bindparam("partner_id")).limit(1), ("partner_id",)


def _stock_row(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = select(*STOCK_COLUMNS).where(_S.c.partner_id == bindparam("partner_id"), _S.c.sku == bindparam("sku"))
    return statement, ("partner_id", "sku")


def _collection_dates(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = select(_D.c.opens_at, _D.c.closes_at, _D.c.pickup_on).where(
        _D.c.partner_id == bindparam("partner_id"),
        _D.c.assembly == bindparam("assembly"),
        _D.c.collection == bindparam("collection"),
    )
    return statement, ("partner_id", "assembly", "collection")


def _receipts_of(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = select(_RC.c.available_from, _RC.c.units).where(
        _RC.c.partner_id == bindparam("partner_id"), _RC.c.sku == bindparam("sku")
    )
    return statement, ("partner_id", "sku")


def _demand_of(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = select(_DD.c.demand_on, _DD.c.units).where(
        _DD.c.partner_id == bindparam("partner_id"), _DD.c.sku == bindparam("sku")
    )
    return statement, ("partner_id", "sku")


def _add_demand(dialect: Dialect) -> tuple[Any, Sequence[str]]:
    insert = dialect.insert(_DD)
    statement = insert.on_conflict_do_update(
        index_elements=[_DD.c.partner_id, _DD.c.sku, _DD.c.demand_on],
        set_={"units": _DD.c.units + insert.excluded.units},
    )
    return statement, ("partner_id", "sku", "demand_on", "units")


def _drop_empty_demand(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = _DD.delete().where(
        _DD.c.partner_id == bindparam("partner_id"),
        _DD.c.sku == bindparam("sku"),
        _DD.c.demand_on == bindparam("demand_on"),
        _DD.c.units == 0,
    )
    return statement, ("partner_id", "sku", "demand_on")


# name -> the statement for a database and the names of its parameters, in the order calls give them
KEYED: dict[str, Callable[[Dialect], tuple[Any, Sequence[str]]]] = {
    "request_answer": _request_answer,
    "keep_request": _keep_request,
    "order_head": _order_head,
    "order_lines": _order_lines,
    "add_order": _add_order,
    "add_lines": _add_lines,
    "add_event": _add_event,
    "holds_channels": _holds_channels,
    "stock_row": _stock_row,
    "collection_dates": _collection_dates,
    "receipts_of": _receipts_of,
    "demand_of": _demand_of,
    "add_demand": _add_demand,
    "drop_empty_demand": _drop_empty_demand,
}
