"""The order export file: orders that reached `invoicing`, one CSV row per order line.

Columns (in this order): order_id, status, updated_at, sku, quantity, confirmed_quantity, assembly, collection.
UTF-8, a header row, `\\r\\n` line ends. A text cell that a spreadsheet would read as a formula (it starts with
`=`, `+`, `-`, `@`, a tab or a carriage return) is written with a leading `'`, so opening the file never runs one.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

EXPORT_COLUMNS = (
    "order_id",
    "status",
    "updated_at",
    "sku",
    "quantity",
    "confirmed_quantity",
    "assembly",
    "collection",
)

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell's text, neutralised when a spreadsheet would take it for a formula."""
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def export_rows(orders: Iterable[Mapping[str, Any]]) -> Iterable[list[str]]:
    """The rows of these order export bodies (as queued in the outbox), line by line."""
    for order in orders:
        for line in order.get("lines", []):
            yield [
                safe_cell(order.get("order_id")),
                safe_cell(order.get("status")),
                safe_cell(order.get("updated_at")),
                safe_cell(line.get("sku")),
                safe_cell(line.get("quantity")),
                safe_cell(line.get("confirmed_quantity")),
                safe_cell(line.get("assembly")),
                safe_cell(line.get("collection")),
            ]


def export_csv(payloads: Iterable[str], delimiter: str = ",") -> bytes:
    """The export file of these queued order export payloads (JSON texts)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows(export_rows(json.loads(payload) for payload in payloads))
    return out.getvalue().encode("utf-8")
