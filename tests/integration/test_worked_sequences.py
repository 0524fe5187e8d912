"""The worked sequences of DOMAIN.md, exactly as written, through the engine on a real SQLite store."""

from __future__ import annotations

import pytest

from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from tests.conftest import AppFactory, at
from tests.integration.helpers import ats, messages, pending_ats, stock

pytestmark = pytest.mark.both_stores

S = OrderStatus


@pytest.mark.parametrize(("pending_allocation", "after_placing"), [(True, 5), (False, 10)])
def test_simple_mode_sequences(make_app: AppFactory, pending_allocation: bool, after_placing: int) -> None:
    """stock 10 -> 10; order 5 -> 5 (on) or 10 (off); confirmed -> 5 (stock 5); stock set to 4 -> 4."""
    app = make_app(p={"stock_mode": "simple", "pending_allocation": pending_allocation})
    c = app.commands
    c.set_stock("p", "123", 10, None)
    assert ats(app, "p", "123") == 10
    c.place("p", "O1", [RequestedLine("123", 5)])
    assert ats(app, "p", "123") == after_placing
    c.set_status("p", "O1", S.CONFIRMED)
    assert (ats(app, "p", "123"), stock(app, "p", "123")) == (5, 5)
    app.clock.advance()  # type: ignore[attr-defined]
    c.set_stock("p", "123", 4, None)
    assert ats(app, "p", "123") == 4


def test_simple_mode_cancelling_a_confirmed_order_gives_the_stock_back(make_app: AppFactory) -> None:
    """On cancellation of a confirmed line: stock level += quantity; cancelling pending moves nothing."""
    app = make_app(p={"stock_mode": "simple"})
    c = app.commands
    c.set_stock("p", "123", 10, None)
    c.place("p", "O1", [RequestedLine("123", 5)])
    c.place("p", "O2", [RequestedLine("123", 2)])
    c.set_status("p", "O1", S.CONFIRMED)
    assert stock(app, "p", "123") == 5
    c.set_status("p", "O1", S.CANCELLED)
    c.set_status("p", "O2", S.CANCELLED)
    assert (stock(app, "p", "123"), ats(app, "p", "123")) == (10, 10)


def test_advanced_mode(make_app: AppFactory) -> None:
    """stock 10 -> 10; order 5 -> 5; confirmed -> 5; invoicing -> 5; stock 5 and order closed -> 5."""
    app = make_app(p={"stock_mode": "advanced"})
    c = app.commands
    c.set_stock("p", "123", 10, None)
    assert ats(app, "p", "123") == 10
    c.place("p", "O1", [RequestedLine("123", 5)])
    assert ats(app, "p", "123") == 5
    c.set_status("p", "O1", S.CONFIRMED)
    assert ats(app, "p", "123") == 5
    c.set_status("p", "O1", S.INVOICING)
    assert ats(app, "p", "123") == 5
    assert messages(app, "p", "order_export") == ["O1"]
    app.clock.advance()  # type: ignore[attr-defined]
    c.set_stock("p", "123", 5, None)
    assert ats(app, "p", "123") == 0  # between the two halves of the acknowledgement: still allocated
    c.set_status("p", "O1", S.CLOSED)
    assert (ats(app, "p", "123"), stock(app, "p", "123")) == (5, 5)
    assert messages(app, "p", "order_closed") == ["O1"]


def test_time_based_mode(make_app: AppFactory) -> None:
    """The seed's sequence: 10, 5, 5, 5, 5, confirmed 4 at 06-26T11 -> 6, stock 6 at 06-26T12 -> 6."""
    app = make_app(p={"stock_mode": "time_based"})
    c = app.commands
    c.set_stock("p", "123", 10, at("2019-06-25T12:00:00"))
    assert ats(app, "p", "123") == 10
    c.place("p", "O1", [RequestedLine("123", 5)])
    assert ats(app, "p", "123") == 5
    for status in (S.CONFIRMED, S.INVOICING, S.CLOSED):
        c.set_status("p", "O1", status)
        assert ats(app, "p", "123") == 5
    c.confirm("p", "O1", "123", 4, at("2019-06-26T11:00:00"))
    assert ats(app, "p", "123") == 6
    c.set_stock("p", "123", 6, at("2019-06-26T12:00:00"))
    assert (ats(app, "p", "123"), stock(app, "p", "123")) == (6, 6)


def test_every_published_change_is_queued_and_a_newer_value_replaces_the_undelivered_one(make_app: AppFactory) -> None:
    """The outbox holds one message per SKU: its latest published ATS."""
    app = make_app(p={"stock_mode": "advanced"})
    c = app.commands
    c.set_stock("p", "123", 10, None)
    assert pending_ats(app, "p") == {"123": 10}
    c.place("p", "O1", [RequestedLine("123", 4)])
    assert pending_ats(app, "p") == {"123": 6}
    c.set_status("p", "O1", S.CONFIRMED)  # allocation unchanged in advanced mode: nothing new
    assert pending_ats(app, "p") == {"123": 6}


def test_oversold_ats_is_published_as_zero(make_app: AppFactory) -> None:
    """A snapshot below what is allocated gives ATS 0 to partners, never negative."""
    app = make_app(p={"stock_mode": "advanced"})
    c = app.commands
    c.set_stock("p", "123", 10, None)
    c.place("p", "O1", [RequestedLine("123", 8)])
    app.clock.advance()  # type: ignore[attr-defined]
    c.set_stock("p", "123", 3, None)
    assert ats(app, "p", "123") == 0
    assert pending_ats(app, "p") == {"123": 0}
