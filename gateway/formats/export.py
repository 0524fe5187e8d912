"""Outbound files: order exports (orders that reached `invoicing`) and closed orders, one CSV row per order
line; ATS and channel ATS values, one row per key.

Columns (in this order): order_id, status, updated_at, sku, quantity, confirmed_quantity, assembly, collection.
UTF-8, a header row, `\\r\\n` line ends. A text cell that a spreadsheet would read as a formula (it starts with
`=`, `+`, `-`, `@`, a tab or a carriage return) is written with a leading `'`, so opening the file never runs one.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from gateway.domain import instant
from gateway.domain.messages import MessageKind

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


ATS_COLUMNS = ("sku", "ats", "as_of", "computed_at")
CHANNEL_ATS_COLUMNS = ("sku", "assembly", "collection", "ats", "cap", "ordered", "computed_at")


class Message(Protocol):
    """What a file needs of an outbox message."""

    @property
    def key(self) -> str: ...

    @property
    def value(self) -> int | None: ...

    @property
    def as_of(self) -> int | None: ...

    @property
    def payload(self) -> str | None: ...

    @property
    def created_at(self) -> int: ...


def _table(header: Iterable[str], rows: Iterable[list[str]], delimiter: str) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def message_csv(kind: MessageKind, messages: Sequence[Message], delimiter: str = ",") -> bytes:
    """The file of one batch of outbox messages of `kind`."""
    if kind in (MessageKind.ORDER_EXPORT, MessageKind.ORDER_CLOSED):
        return export_csv([m.payload or "{}" for m in messages], delimiter)
    if kind == MessageKind.ATS:
        # today's value only: the schedule of a SKU with dated supply goes over the API, files stay as they were
        rows = [
            [safe_cell(m.key), str(m.value), instant.to_iso(m.as_of) or "", instant.to_iso_fixed(m.created_at)]
            for m in messages
        ]
        return _table(ATS_COLUMNS, rows, delimiter)
    channel_rows = []
    for m in messages:
        body = json.loads(m.payload or "{}")
        channel_rows.append(
            [safe_cell(body.get(column)) for column in CHANNEL_ATS_COLUMNS[:-1]] + [instant.to_iso_fixed(m.created_at)]
        )
    return _table(CHANNEL_ATS_COLUMNS, channel_rows, delimiter)
