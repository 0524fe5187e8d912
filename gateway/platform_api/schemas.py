"""The platform API's request bodies and answers (pydantic models, which are also its OpenAPI schemas)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

from gateway.domain import identifiers
from gateway.domain.caps import CapSource
from gateway.domain.status import OrderStatus

MAX_QUANTITY = 999_999_999_999


def _identifier(value: str) -> str:
    why = identifiers.problem(value)
    if why is not None:
        raise ValueError(why)
    return value


# The one identifier rule of the domain (SKU, order id, assembly, collection), for bodies, paths and queries alike;
# the schema shows what JSON Schema can say of it (the rule also refuses leading or trailing whitespace).
Identifier = Annotated[
    str,
    AfterValidator(_identifier),
    Field(
        json_schema_extra={"minLength": 1, "maxLength": identifiers.MAX_LENGTH, "pattern": identifiers.PATTERN},
        description="1 to 128 characters, no control characters, no leading or trailing whitespace",
    ),
]
# a JSON integer, never `true`, `"5"` or `5.0`
Quantity = Annotated[int, Strict()]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderLineIn(_Body):
    """One line of an order to place."""

    sku: Identifier
    quantity: Quantity = Field(ge=1, le=MAX_QUANTITY)


class OrderIn(_Body):
    """An order to place: all its lines or none."""

    order_id: Identifier
    lines: list[OrderLineIn] = Field(min_length=1, max_length=1000)
    assembly: Identifier | None = None
    collection: Identifier | None = None
    wanted_on: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The date the lines are wanted on: a date (2026-12-15) or an instant, its date in the partner's "
        "zone. Each line must fit the ATP on its date; a collection's pickup date wins over it. Absent: today.",
    )


class StatusIn(_Body):
    """An order's new status."""

    status: OrderStatus


class ConfirmationIn(_Body):
    """The partner's confirmed quantity for one line of an order."""

    sku: Identifier
    confirmed_quantity: Quantity = Field(ge=0, le=MAX_QUANTITY)
    confirmed_at: str = Field(description="ISO 8601; without an offset, the partner's time zone")


class CapIn(_Body):
    """One cap setting: a collection's, or with collection "*" the assembly default; max null: no maximum."""

    sku: Identifier
    assembly: Identifier
    collection: Identifier
    max: Quantity | None = Field(ge=0, le=MAX_QUANTITY)


class CollectionIn(_Body):
    """One collection's dates, replaced whole: a date left out or null is none (that side of the window open; no
    pickup date). Instants without an offset are in the partner's time zone."""

    assembly: Identifier
    collection: Identifier
    opens_at: str | None = Field(default=None, description="ISO 8601; orders are taken from then (included)")
    closes_at: str | None = Field(default=None, description="ISO 8601; orders are refused from then on")
    pickup_on: str | None = Field(default=None, description="YYYY-MM-DD: the date its lines are demand for")


class StockIn(_Body):
    """A SKU's stock level, as a one-row snapshot."""

    quantity: Quantity = Field(ge=0, le=MAX_QUANTITY)
    as_of: str | None = Field(default=None, description="ISO 8601; default now")


class AtsOut(BaseModel):
    """One SKU's ATS (the published value: never negative); `oversold`: the stock is below the allocation."""

    sku: str
    stock: int
    allocated: int
    ats: int
    oversold: bool
    as_of: str | None


class AtpOut(AtsOut):
    """One SKU's ATS and its available-to-promise on a date (`GET ats?on=DATE`): `on` the date asked (today when
    it was before today), `atp` the most a line for that date may take (never negative)."""

    on: str
    atp: int


class ChannelOut(BaseModel):
    """What one collection of an assembly may still take of a SKU."""

    sku: str
    assembly: str
    collection: str
    ats: int
    cap: int | None
    ordered: int


class OrderLineOut(BaseModel):
    """One line of an order: whether it allocates under the partner's stock mode, its units and the rule (or the
    rule that leaves it out); `inventory_at` is its SKU's inventory timestamp."""

    sku: str
    quantity: int
    assembly: str | None
    collection: str | None
    confirmed_quantity: int | None
    confirmed_at: str | None
    inventory_at: str | None
    allocates: bool
    units: int
    rule: str


class OrderEventOut(BaseModel):
    """A status an order reached, when, and what moved it: `ledger:N` (an inbound item: its ledger entry and
    source), `command:cli` or `command:api`; null when unknown (an order older than the histories)."""

    status: OrderStatus
    at: str
    by: str | None
    ledger_entry: int | None
    source: str | None


class ConfirmationOut(BaseModel):
    """A confirmation received for a line (`in_force` false: a later-stamped one had arrived before it)."""

    sku: str
    confirmed_quantity: int
    confirmed_at: str
    received_at: str
    in_force: bool


class OrderSummaryOut(BaseModel):
    """An order as listed: `updated_at` is when it reached its status, `allocated` the units its lines hold."""

    order_id: str
    status: OrderStatus
    created_at: str
    updated_at: str
    allocated: int
    lines: list[OrderLineOut]


class OrderOut(OrderSummaryOut):
    """One order read whole: its lines, each status it reached (oldest first), the confirmations received."""

    mode: str
    history: list[OrderEventOut]
    confirmations: list[ConfirmationOut]


class ChangeOut(BaseModel):
    """A published ATS value a command moved."""

    sku: str
    before: int | None
    after: int


class CommandOut(BaseModel):
    """What a command did."""

    partner: str
    ats_changes: list[ChangeOut]
    order_id: str | None = None


class ErasedCapOut(BaseModel):
    """A collection's own cap setting a command removed (max null: it was "no maximum")."""

    collection: str
    max: int | None


class OverCapOut(BaseModel):
    """A collection holding more units (not cancelled) than its cap: the orders stay, it takes no more."""

    collection: str
    ordered: int
    cap: int


class CapOut(CommandOut):
    """What setting or clearing a cap did: the cap now in force in `collection` ("*": the assembly default; max
    null: none) and where it comes from, the collections' own settings it erased (setting "*" erases them all),
    and the collections it touched that now hold more than their cap. `order_id` is always null here."""

    sku: str
    assembly: str
    collection: str
    max: int | None
    cap_source: CapSource
    erased: list[ErasedCapOut]
    over_cap: list[OverCapOut]
    ongoing: list[str] = Field(
        description='with collection "*": the assembly\'s collections open now (one without dates always is)'
    )


class CapLineOut(BaseModel):
    """One cap: the assembly default (collection "*") or a collection with its own setting or with units ordered
    under the default. `max` is the cap in force (null: no maximum), `ordered` the units on lines not cancelled,
    `remaining` max - ordered (negative when over the cap; null with no maximum, and on the "*" line, which takes
    no order)."""

    sku: str
    assembly: str
    collection: str
    max: int | None
    cap_source: CapSource
    ordered: int | None
    remaining: int | None
    over_cap: bool


class CollectionLineOut(BaseModel):
    """One dated collection: its window (`opens_at` included, `closes_at` excluded; null: open on that side), its
    pickup date, and whether it takes orders now."""

    assembly: str
    collection: str
    opens_at: str | None
    closes_at: str | None
    pickup_on: str | None
    open_now: bool


class CollectionOut(CollectionLineOut):
    """What setting a collection's dates did: its dates now, and whether it had dates before."""

    partner: str
    had_dates: bool


class WarningOut(BaseModel):
    """Something the command applied that should be looked at (it applied all the same): `warning` its code
    (`snapshot_predates_confirmation`: a level older than the last confirmation applied for its SKU, which may put
    units already sold back on sale), the first SKUs it concerns, how many in all, and what it means in words."""

    warning: str
    skus: list[str]
    count: int
    message: str


class StockOut(CommandOut):
    """What setting a stock level did: the ATS values it moved, and its warnings (empty when none)."""

    warnings: list[WarningOut]


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str | None = None
