"""Reading a stock snapshot that carries dated supply (`available_from`): each SKU's rows gathered into its supply.

A SKU may then have several rows: at most one without a date (its units on hand; a second is a duplicate SKU, as
in any snapshot) and any number with one (units that exist from that date on, `days.parse_day`: a date, or an
instant whose date in the partner's zone counts). Rows on one date add up (docs/rules.md: two deliveries on the
15th, or one at 08:00 and one at 14:00). An `available_from` that is neither a date nor an instant refuses its row,
and with it the SKU's whole schedule in this snapshot (`bad_available_from`): a schedule with a receipt missing
would be a wrong one, so the SKU stays as it was. Every other cell is checked as a plain snapshot's
(rows.Cells): a problem there refuses the file whole.

Row by row, in Python: the bulk paths (stock_rows.py, PostgreSQL's COPY) read plain levels only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, tzinfo

from gateway.domain import days
from gateway.domain.instant import Instant
from gateway.formats.csvfile import CsvTable
from gateway.formats.problems import Problem
from gateway.formats.rows import Cells

BAD_DATE = "bad_available_from"  # the refusal's code


@dataclass
class DatedSupply:
    """One SKU's rows in a snapshot: units on hand, receipts by date (merged), the latest `as_of` among its rows
    (the schedule's inventory timestamp), and the lines it was given on."""

    sku: str
    as_of: Instant
    lines: list[int] = field(default_factory=list)
    on_hand: int = 0
    undated: bool = False  # a row without a date was read (a second one is a duplicate SKU)
    receipts: dict[date, int] = field(default_factory=dict)
    refusal: Problem | None = None  # the row that refuses the SKU's schedule in this snapshot


def read_dated(table: CsvTable, zone: tzinfo, default_as_of: Instant) -> dict[str, DatedSupply]:
    """Every SKU's supply in the snapshot, in the order first met. Malformed cells are added to the table's
    problems (the caller refuses the file); a SKU whose date cannot be read carries its `refusal`."""
    cells = Cells(table.problems, zone)
    index = table.index
    i_sku, i_qty = index["sku"], index["quantity"]
    i_as_of, i_from = index.get("as_of"), index.get("available_from")
    found: dict[str, DatedSupply] = {}
    for line, row in table:
        sku = cells.identifier(line, "sku", row[i_sku])
        quantity = cells.count(line, "quantity", row[i_qty])
        stamp = row[i_as_of].strip() if i_as_of is not None else ""
        as_of = cells.moment(line, "as_of", stamp, required=False) if stamp else default_as_of
        if sku is None or quantity is None or as_of is None:
            continue
        supply = found.get(sku)
        if supply is None:
            supply = found[sku] = DatedSupply(sku, as_of)
        supply.as_of = max(supply.as_of, as_of)
        supply.lines.append(line)
        text = row[i_from].strip() if i_from is not None else ""
        if not text:
            if supply.undated:
                table.problems.add(Problem(line, f"SKU {sku} appears more than once in this snapshot", "sku"))
                continue
            supply.undated = True
            supply.on_hand += quantity
            continue
        try:
            day = days.parse_day(text, zone)
        except (ValueError, OverflowError) as exc:
            if supply.refusal is None:
                message = f"available_from of SKU {sku}: {exc}; the SKU's supply is left as it was"
                supply.refusal = Problem(line, message, "available_from", reason=BAD_DATE)
            continue
        supply.receipts[day] = supply.receipts.get(day, 0) + quantity
    return found
