"""The platform API's request bodies and answers (pydantic models, which are also its OpenAPI schemas)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

from gateway.domain import identifiers
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


class ChannelOut(BaseModel):
    """What one collection of an assembly may still take of a SKU."""

    sku: str
    assembly: str
    collection: str
    ats: int
    cap: int | None
    ordered: int


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


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str | None = None
