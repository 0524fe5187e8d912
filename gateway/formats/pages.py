"""Pages of a partner's API feeds in the reference shape (docs/partner-api.md), checked into rows.

A page is `{"items": [...], "next_cursor": "...", "has_more": true}`. Each item is checked like a row of the
matching flat file, with the same messages; a problem names the item's position in the page (from 1) and the
field. A page with any problem is refused whole, as a malformed file is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from enum import StrEnum
from typing import Any, TypeVar

from gateway.domain.instant import Instant
from gateway.domain.status import OrderStatus
from gateway.formats.problems import Problem, Problems
from gateway.formats.rows import Cells, ConfirmationRow, StockRow

MAX_CURSOR_LENGTH = 2000
_SURROGATE = re.compile("[\ud800-\udfff]")

_T = TypeVar("_T")


class Feed(StrEnum):
    """The feeds a partner API serves: stock levels, and acknowledgements (status moves and confirmations)."""

    STOCK = "stock"
    ACKNOWLEDGEMENTS = "acknowledgements"


@dataclass(frozen=True)
class Page:
    """The envelope of one page: its items, the cursor to send next, and whether more pages wait."""

    items: list[Any]
    next_cursor: str | None
    has_more: bool | None


@dataclass(frozen=True, slots=True)
class StatusItem:
    """An acknowledgement that moves an order (all its lines) to a status: usually `closed`."""

    line: int
    order_id: str
    status: OrderStatus


@dataclass
class Acknowledgements:
    """The status moves and the confirmations of one acknowledgements page, in page order."""

    items: list[StatusItem | ConfirmationRow]

    @property
    def statuses(self) -> list[StatusItem]:
        """The status moves alone."""
        return [item for item in self.items if isinstance(item, StatusItem)]

    @property
    def confirmations(self) -> list[ConfirmationRow]:
        """The confirmations alone."""
        return [item for item in self.items if isinstance(item, ConfirmationRow)]


def _problem(problems: Problems, item: int | None, message: str, field: str | None = None) -> None:
    problems.add(Problem(item, message, field, unit="item"))


def decode(body: bytes, problems: Problems) -> Any:
    """The JSON document in `body`, or None with a problem when it is not JSON in UTF-8 (a byte-order mark is let
    pass). Not json.loads(bytes): that also takes UTF-16 and UTF-32, and encoded lone surrogates."""
    try:
        return json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError:
        _problem(problems, None, "the page is not UTF-8 text")
    except json.JSONDecodeError as exc:
        _problem(problems, None, f"the page is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, nesting without end
        _problem(problems, None, f"the page cannot be read as JSON: {str(exc)[:200]}")
    return None


def envelope(document: Any, problems: Problems) -> Page | None:
    """The page's envelope, or None with problems when it is not `{"items": [...], "next_cursor": ...}`."""
    if not isinstance(document, Mapping):
        _problem(problems, None, f'a page is a JSON object with "items" and "next_cursor", got {_kind(document)}')
        return None
    items = document.get("items")
    if not isinstance(items, list):
        _problem(problems, None, f'"items" must be a list, got {_kind(items)}', "items")
    cursor = document.get("next_cursor")
    if cursor is not None and (not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH):
        _problem(
            problems,
            None,
            f"must be a non-empty string of at most {MAX_CURSOR_LENGTH} characters or null",
            "next_cursor",
        )
    has_more = document.get("has_more")
    if has_more is not None and not isinstance(has_more, bool):
        _problem(problems, None, f"must be true or false, got {_kind(has_more)}", "has_more")
    if problems:
        return None
    return Page(items, cursor, has_more)  # type: ignore[arg-type]  # checked above


class _Fields:
    """Reads an item's fields through the flat files' cell checks."""

    def __init__(self, problems: Problems, zone: tzinfo) -> None:
        self.problems = problems
        self.cells = Cells(problems, zone, unit="item")

    def text(self, item: int, data: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
        value = data.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            _problem(self.problems, item, f"must be a string, got {_kind(value)}", name)
            return None
        if _SURROGATE.search(value):  # a "\ud800" escape alone: JSON lets it through, no store can keep it
            _problem(self.problems, item, "contains a lone surrogate (\\ud800 to \\udfff), which is not text", name)
            return None
        return value

    def identifier(self, item: int, data: Mapping[str, Any], name: str) -> str | None:
        value = self.text(item, data, name)
        return None if value is None else self.cells.identifier(item, name, value)

    def count(self, item: int, data: Mapping[str, Any], name: str, *, minimum: int = 0) -> int | None:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            _problem(self.problems, item, f"must be a whole number of at least {minimum}, got {_kind(value)}", name)
            return None
        return self.cells.count(item, name, str(value), minimum=minimum)

    def moment(self, item: int, data: Mapping[str, Any], name: str, *, required: bool) -> Instant | None:
        value = self.text(item, data, name, required=required)
        if value is None:
            return None
        return self.cells.moment(item, name, value, required=required)

    def status(self, item: int, data: Mapping[str, Any]) -> OrderStatus | None:
        value = self.text(item, data, "status")
        return None if value is None else self.cells.status(item, "status", value)


def _objects(page: Page, problems: Problems) -> list[tuple[int, Mapping[str, Any]]]:
    found = []
    for position, item in enumerate(page.items, start=1):
        if isinstance(item, Mapping):
            found.append((position, item))
        else:
            _problem(problems, position, f"an item is a JSON object, got {_kind(item)}")
    return found


def stock_items(page: Page, zone: tzinfo, problems: Problems) -> list[StockRow]:
    """The stock levels of a stock page: `sku`, `quantity` and `as_of` (optional: the page's instant)."""
    fields = _Fields(problems, zone)
    rows: list[StockRow] = []
    seen: dict[str, int] = {}
    for position, data in _objects(page, problems):
        sku = fields.identifier(position, data, "sku")
        quantity = fields.count(position, data, "quantity")
        as_of = fields.moment(position, data, "as_of", required=False)
        if sku is None or quantity is None:
            continue
        if sku in seen:
            _problem(problems, position, f"SKU {sku} is given again (first at item {seen[sku]})", "sku")
            continue
        seen[sku] = position
        rows.append(StockRow(position, sku, quantity, as_of))
    return rows


def acknowledgement_items(page: Page, zone: tzinfo, problems: Problems) -> Acknowledgements:
    """The items of an acknowledgements page: `{order_id, status}` moves an order, `{order_id, sku,
    confirmed_quantity, confirmed_at}` confirms a line."""
    fields = _Fields(problems, zone)
    found = Acknowledgements([])
    for position, data in _objects(page, problems):
        order_id = fields.identifier(position, data, "order_id")
        if "status" in data and "confirmed_quantity" not in data:
            status = fields.status(position, data)
            if order_id is not None and status is not None:
                found.items.append(StatusItem(position, order_id, status))
        elif "confirmed_quantity" in data and "status" not in data:
            sku = fields.identifier(position, data, "sku")
            quantity = fields.count(position, data, "confirmed_quantity")
            at = fields.moment(position, data, "confirmed_at", required=True)
            if order_id is not None and sku is not None and quantity is not None and at is not None:
                found.items.append(ConfirmationRow(position, order_id, sku, quantity, at))
        else:
            _problem(
                problems,
                position,
                'an acknowledgement has either "status" (an order status) or "sku", "confirmed_quantity" and '
                '"confirmed_at" (a confirmation)',
            )
    return found


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return repr(shown)
    if isinstance(value, int | float):
        return repr(value)
    return "an object" if isinstance(value, Mapping) else "a list" if isinstance(value, list) else type(value).__name__
