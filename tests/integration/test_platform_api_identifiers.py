"""The platform API holds every identifier to the one rule of the domain (1 to 128 characters, no control
characters, no leading or trailing whitespace), wherever it comes: a path, a query, a body. Quantities are JSON
integers, and a body that is not UTF-8 is malformed like any other. On SQLite and on PostgreSQL (which refuses a
NUL in a string: it must never see one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from gateway import bootstrap, platform_api, settings
from gateway.access import Tokens
from tests.conftest import FakeClock
from tests.integration.helpers import contents
from tests.integration.test_platform_api import (
    ASM,
    COL,
    ENV,
    TestClient,
    auth,
    order_body,
    problem,
    url,
    write_api_config,
)

pytestmark = pytest.mark.both_stores

# (value, what the refusal says); each one breaks the rule in its own way
BAD = [
    ("A\x00B", "contains control characters"),
    ("A\x1fB", "contains control characters"),
    ("A\x7fB", "contains control characters"),
    ("A\x85B", "contains control characters"),
    ("A\u2028B", "contains control characters"),
    ("P1 ", "has leading or trailing whitespace"),
    (" P1", "has leading or trailing whitespace"),
    ("P1\u3000", "has leading or trailing whitespace"),
    ("x" * 129, "longer than 128 characters"),
]


@pytest.fixture
def gateway_app(tmp_path: Path, clock: FakeClock, store_url: str) -> Iterator[bootstrap.App]:
    app = bootstrap.build(settings.load(write_api_config(tmp_path, store_url=store_url), environ={}), clock=clock)
    yield app
    app.close()


@pytest.fixture
def client(gateway_app: bootstrap.App) -> Iterator[TestClient]:
    tokens = Tokens.from_settings(gateway_app.settings, environ=ENV)
    with TestClient(platform_api.create_app(gateway_app, tokens)) as found:
        yield found


@pytest.fixture
def seeded(client: TestClient, gateway_app: bootstrap.App) -> dict[str, list[tuple[Any, ...]]]:
    """EGGS in stock and order O1 placed; what the store holds then."""
    assert client.put(url("acme", "stock/EGGS"), json={"quantity": 10}, headers=auth()).status_code == 200
    placed = client.post(
        url("acme", "orders"), json=order_body("O1", ("EGGS", 1)), headers=auth(**{"Idempotency-Key": "k"})
    )
    assert placed.status_code == 201, placed.text
    return contents(gateway_app)


def refused(answer: Any, where: str, why: str) -> None:
    """A 422 naming where the bad identifier was and why it is refused."""
    body = problem(answer, 422, "malformed", why)
    assert where in [error["where"] for error in body["errors"]], body


def test_a_bad_identifier_in_a_path_is_422_and_changes_nothing(
    client: TestClient, gateway_app: bootstrap.App, seeded: dict[str, Any]
) -> None:
    """A SKU or order id in the path that breaks the rule is refused with 422 naming it, before the store sees it."""
    for value, why in BAD:
        path = quote(value, safe="")
        refused(client.put(url("acme", f"stock/{path}"), json={"quantity": 1}, headers=auth()), "path.sku", why)
        refused(client.get(url("acme", f"ats/{path}/explain"), headers=auth()), "path.sku", why)
        refused(client.get(url("acme", f"orders/{path}"), headers=auth()), "path.order_id", why)
        move = {"status": "cancelled"}
        refused(client.post(url("acme", f"orders/{path}/status"), json=move, headers=auth()), "path.order_id", why)
        confirmation = {"sku": "EGGS", "confirmed_quantity": 1, "confirmed_at": "2026-01-01T09:00:00Z"}
        answer = client.post(url("acme", f"orders/{path}/confirmations"), json=confirmation, headers=auth())
        refused(answer, "path.order_id", why)
    assert contents(gateway_app) == seeded


def test_a_bad_identifier_in_a_query_is_422(client: TestClient) -> None:
    """A SKU, assembly or collection in the query of `GET ats`, `GET caps`, `DELETE caps` or `GET collections` that
    breaks the rule is refused with 422 naming it."""
    for value, why in BAD:
        refused(client.get(url("acme", "ats"), params={"sku": ["EGGS", value]}, headers=auth()), "query.sku.1", why)
        for name in ("assembly", "collection"):
            params = {"sku": "EGGS", "assembly": ASM, "collection": COL} | {name: value}
            refused(client.get(url("acme", "ats"), params=params, headers=auth()), f"query.{name}", why)
        for name in ("sku", "assembly"):
            refused(client.get(url("acme", "caps"), params={name: value}, headers=auth()), f"query.{name}", why)
        for name in ("sku", "assembly", "collection"):
            params = {"sku": "EGGS", "assembly": ASM, "collection": COL} | {name: value}
            refused(client.delete(url("acme", "caps"), params=params, headers=auth()), f"query.{name}", why)
        refused(
            client.get(url("acme", "collections"), params={"assembly": value}, headers=auth()), "query.assembly", why
        )


def test_a_bad_identifier_in_a_body_is_422_and_changes_nothing(
    client: TestClient, gateway_app: bootstrap.App, seeded: dict[str, Any]
) -> None:
    """A SKU, order id, assembly or collection in a body that breaks the rule is refused with 422 naming it."""
    cap = {"sku": "EGGS", "assembly": ASM, "collection": COL, "max": 3}
    confirmation = {"sku": "EGGS", "confirmed_quantity": 1, "confirmed_at": "2026-01-01T09:00:00Z"}
    for n, (value, why) in enumerate(BAD):
        key = auth(**{"Idempotency-Key": f"bad-{n}"})
        for body, where in [
            (order_body(value, ("EGGS", 1)), "body.order_id"),
            (
                order_body("O2", ("EGGS", 1), ("MILK", 1)) | {"lines": [{"sku": value, "quantity": 1}]},
                "body.lines.0.sku",
            ),
            (order_body("O2", ("EGGS", 1), assembly=value, collection=COL), "body.assembly"),
            (order_body("O2", ("EGGS", 1), assembly=ASM, collection=value), "body.collection"),
        ]:
            refused(client.post(url("acme", "orders"), json=body, headers=key), where, why)
        for name in ("sku", "assembly", "collection"):
            refused(client.put(url("acme", "caps"), json=cap | {name: value}, headers=auth()), f"body.{name}", why)
        for name in ("assembly", "collection"):
            dates = {"assembly": ASM, "collection": COL, "pickup_on": "2026-12-11"} | {name: value}
            refused(client.put(url("acme", "collections"), json=dates, headers=auth()), f"body.{name}", why)
        answer = client.post(url("acme", "orders/O1/confirmations"), json=confirmation | {"sku": value}, headers=auth())
        refused(answer, "body.sku", why)
    assert contents(gateway_app) == seeded


@pytest.mark.parametrize("quantity", [True, False, "5", 5.0, None])
def test_quantities_are_json_integers_and_nothing_else(
    client: TestClient, gateway_app: bootstrap.App, seeded: dict[str, Any], quantity: Any
) -> None:
    """`true`, `"5"` or `5.0` where a quantity goes is 422 on every endpoint that takes one, never read as a number."""
    key = auth(**{"Idempotency-Key": "quantity"})
    line = {"sku": "EGGS", "quantity": quantity}
    answer = client.post(url("acme", "orders"), json=order_body("O2", ("EGGS", 1)) | {"lines": [line]}, headers=key)
    refused(answer, "body.lines.0.quantity", "")
    refused(client.put(url("acme", "stock/EGGS"), json={"quantity": quantity}, headers=auth()), "body.quantity", "")
    confirmation = {"sku": "EGGS", "confirmed_quantity": quantity, "confirmed_at": "2026-01-01T09:00:00Z"}
    answer = client.post(url("acme", "orders/O1/confirmations"), json=confirmation, headers=auth())
    refused(answer, "body.confirmed_quantity", "")
    if quantity is not None:  # a cap's max may be null: no maximum
        cap = {"sku": "EGGS", "assembly": ASM, "collection": COL, "max": quantity}
        refused(client.put(url("acme", "caps"), json=cap, headers=auth()), "body.max", "")
    assert contents(gateway_app) == seeded


def test_a_body_that_is_not_utf8_is_422_like_any_malformed_body(
    client: TestClient, gateway_app: bootstrap.App, seeded: dict[str, Any]
) -> None:
    """A JSON body that is not UTF-8 (bad bytes, or UTF-16 or UTF-32) is 422 problem details, not the framework's
    400 nor a guess at its encoding."""
    headers = auth(**{"Idempotency-Key": "latin-1", "Content-Type": "application/json"})
    body = '{"order_id": "café", "lines": [{"sku": "EGGS", "quantity": 1}]}'.encode("latin-1")
    problem(client.post(url("acme", "orders"), content=body, headers=headers), 422, "malformed", "body: not UTF-8")
    answer = client.put(url("acme", "stock/EGGS"), content=b'{"quantity": 1\xff}', headers=headers)
    problem(answer, 422, "malformed", "body: not UTF-8")
    for encoding in ("utf-16", "utf-32"):  # what json.loads would guess from the bytes: still not UTF-8
        answer = client.put(url("acme", "stock/EGGS"), content='{"quantity": 1}'.encode(encoding), headers=headers)
        problem(answer, 422, "malformed", "body: not UTF-8")
    assert contents(gateway_app) == seeded
    answer = client.put(url("acme", "stock/EGGS"), content=b'\xef\xbb\xbf{"quantity": 1}', headers=headers)
    assert answer.status_code == 200, answer.text  # UTF-8 with a byte-order mark is UTF-8


def test_good_identifiers_of_every_kind_are_taken_as_given(client: TestClient) -> None:
    """Identifiers with inner spaces, accents, slashes and 128 characters are accepted and kept exactly."""
    for sku in ("AB 12", "crème/brûlée", "x" * 128, "*"):
        answer = client.put(url("acme", f"stock/{quote(sku, safe='')}"), json={"quantity": 2}, headers=auth())
        assert answer.status_code == 200, answer.text
        found = client.get(url("acme", "ats"), params={"sku": sku}, headers=auth()).json()
        assert [(row["sku"], row["stock"]) for row in found] == [(sku, 2)]
