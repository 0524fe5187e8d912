"""The feed rules the partner API documents state (docs/partner-api.md, docs/partner-api.openapi.yaml; the two are
held to the same words by tests/unit/test_docs_agree.py), as the gateway applies them to pages of a feed."""

from __future__ import annotations

import json

import pytest

from gateway import bootstrap
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.problems import Problems
from tests.conftest import AppFactory, at
from tests.integration.helpers import stock

pytestmark = pytest.mark.both_stores


def read(body: bytes, _problems: Problems) -> object:
    return json.loads(body)


def page(app: bootstrap.App, feed: str, cursor: str | None, items: list[dict[str, object]], after: str) -> str:
    """Apply one page of `feed` asked at `cursor`; its outcome."""
    body = json.dumps({"items": items, "next_cursor": after, "has_more": False}).encode()
    return str(app.feeds.ingest_page("p", feed, body, cursor, read).result.outcome)


def closed_message(app: bootstrap.App, order_id: str) -> dict[str, object]:
    with app.store.read() as tx:
        [message] = [
            m for m in tx.outbox.rows(tx.partners.id_of("p")) if m.kind == "order_closed" and m.key == order_id
        ]
    body: dict[str, object] = json.loads(message.payload or "{}")
    return body


@pytest.mark.parametrize(("confirm_first", "carried"), [(True, 4), (False, None)])
def test_acknowledgement_items_apply_in_page_order(
    make_app: AppFactory, confirm_first: bool, carried: int | None
) -> None:
    """A confirmation before the closing of its order in one page is recorded first, so the `orders/closed`
    message carries it; after the closing, it is recorded after the message was queued."""
    app = make_app(p={"stock_mode": "time_based"})
    app.commands.set_stock("p", "S1", 10, at("2025-12-31T00:00:00Z"))
    app.commands.place("p", "O1", [RequestedLine("S1", 5)])
    app.commands.set_status("p", "O1", OrderStatus.INVOICING)
    confirmation = {"order_id": "O1", "sku": "S1", "confirmed_quantity": 4, "confirmed_at": "2026-01-01T00:00:00Z"}
    closing = {"order_id": "O1", "status": "closed"}
    items = [confirmation, closing] if confirm_first else [closing, confirmation]
    assert page(app, "acknowledgements", None, items, "1") == "applied"
    [line] = closed_message(app, "O1")["lines"]  # type: ignore[misc]
    assert line["confirmed_quantity"] == carried


def test_a_page_is_a_duplicate_only_of_the_last_one_applied_at_the_same_cursor(make_app: AppFactory) -> None:
    """Asked again from the same cursor, an unchanged page is a duplicate; a page repeating an older one after a
    different page (a level 5, then 3, then 5 again) is applied: it is news."""
    app = make_app(p={"stock_mode": "advanced"})
    five = [{"sku": "S1", "quantity": 5, "as_of": "2026-01-01T00:00:00Z"}]
    three = [{"sku": "S1", "quantity": 3, "as_of": "2026-01-01T00:00:00Z"}]
    assert page(app, "stock", None, five, "c") == "applied"
    assert page(app, "stock", None, five, "c") == "duplicate"
    assert page(app, "stock", "c", three, "c") == "applied"
    assert stock(app, "p", "S1") == 3
    assert page(app, "stock", "c", five, "c") == "applied"
    assert stock(app, "p", "S1") == 5
