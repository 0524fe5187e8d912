"""An order's JSON shape (gateway/views.py): `gateway order show|list --json` and `GET orders[/{order_id}]` name
what the platform API's models document, field for field, and say what moved each status."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from gateway import views
from gateway.domain import instant
from gateway.domain.status import OrderStatus
from gateway.platform_api.schemas import ConfirmationOut, OrderEventOut, OrderLineOut, OrderOut, OrderSummaryOut
from gateway.service.order_reads import LineView, OrderDetail, OrderView
from gateway.store.records import ConfirmationRecord, OrderEvent

T = instant.parse("2019-06-26T11:00:00Z")
LINE = LineView("EGGS", 5, "paris-11", "2026-12-01", 4, T, T - 1, True, 4, "closed line confirmed at ...")
VIEW = OrderView("O1", OrderStatus.CLOSED, T - 10, T, (LINE,))
EVENTS = (
    OrderEvent(OrderStatus.PENDING, T - 10),
    OrderEvent(OrderStatus.INVOICING, T - 5, command="api"),
    OrderEvent(OrderStatus.CLOSED, T, ledger_id=7, source="drop:closing.csv"),
)
CONFIRMATION = ConfirmationRecord("EGGS", 4, T, T + 1, in_force=True)
DETAIL = OrderDetail(VIEW, "time_based", EVENTS, (CONFIRMATION,))


@pytest.mark.parametrize(
    ("body", "model"),
    [
        (views.order_line(LINE), OrderLineOut),
        (views.order_event(EVENTS[2]), OrderEventOut),
        (views.confirmation(CONFIRMATION), ConfirmationOut),
        (views.order_summary(VIEW), OrderSummaryOut),
        (views.order(DETAIL), OrderOut),
    ],
    ids=["line", "event", "confirmation", "summary", "order"],
)
def test_an_order_view_names_exactly_the_fields_of_the_api_model_that_documents_it(
    body: dict[str, object], model: type[BaseModel]
) -> None:
    """The view and the OpenAPI model agree name for name, and the model reads the view back unchanged."""
    assert list(body) == list(model.model_fields)
    assert model.model_validate(body).model_dump(mode="json") == body


def test_the_history_says_what_moved_each_status() -> None:
    """An inbound item by its ledger entry, a command by where it was given, and nothing known as null."""
    assert [views.order_event(e)["by"] for e in EVENTS] == [None, "command:api", "ledger:7"]
    assert views.order_event(EVENTS[2]) == {
        "status": "closed",
        "at": "2019-06-26T11:00:00Z",
        "by": "ledger:7",
        "ledger_entry": 7,
        "source": "drop:closing.csv",
    }


def test_an_order_summary_counts_the_units_its_lines_hold() -> None:
    body = views.order_summary(VIEW)
    assert (body["status"], body["allocated"], body["updated_at"]) == ("closed", 4, "2019-06-26T11:00:00Z")
