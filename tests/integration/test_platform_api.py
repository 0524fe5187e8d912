"""The platform HTTP API (issue 7) on real SQLite files: every endpoint, every refusal with its problem details,
idempotency, access control, the races of 200 placements through a real uvicorn, and `gateway serve`."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from gateway import bootstrap, platform_api, settings
from gateway.access import Tokens
from gateway.service import queries
from gateway.settings import ConfigError
from gateway.store import schema
from tests.conftest import FakeClock, write_config
from tests.integration.helpers import contents

with warnings.catch_warnings():  # starlette's TestClient names anyio.abc.BlockingPortal, an alias anyio deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"
TOKEN_A = "acme-token-0123456789abcdef"  # noqa: S105 - a test token
TOKEN_B = "bolt-token-0123456789abcdef"  # noqa: S105
TOKEN_ALL = "admin-token-0123456789abcdef"  # noqa: S105
ENV = {"TOKEN_ACME": TOKEN_A, "TOKEN_BOLT": TOKEN_B, "TOKEN_ALL": TOKEN_ALL}
ASM, COL, COL2 = "paris-11", "2026-12-01", "2026-12-08"
CH = {"assembly": ASM, "collection": COL}
TOKENS_TOML = """
[api]
enabled = true

[[api.tokens]]
name = "acme-checkout"
token_env = "TOKEN_ACME"
partners = ["acme"]

[[api.tokens]]
name = "bolt-office"
token_env = "TOKEN_BOLT"
partners = ["bolt"]

[[api.tokens]]
name = "operator"
token_env = "TOKEN_ALL"
partners = ["*"]
"""


def write_api_config(folder: Path, api: str = TOKENS_TOML, store_url: str | None = None) -> Path:
    """acme (time based, Paris time) and bolt (advanced), with the tokens of `api`."""
    path = write_config(
        folder,
        {"acme": {"stock_mode": "time_based", "timezone": "Europe/Paris"}, "bolt": {"stock_mode": "advanced"}},
        store_url,
    )
    path.write_text(path.read_text(encoding="utf-8") + api, encoding="utf-8")
    return path


@pytest.fixture
def gateway_app(tmp_path: Path, clock: FakeClock, store_url: str) -> Iterator[bootstrap.App]:
    app = bootstrap.build(settings.load(write_api_config(tmp_path, store_url=store_url), environ={}), clock=clock)
    yield app
    app.close()


@pytest.fixture
def tokens(gateway_app: bootstrap.App) -> Tokens:
    return Tokens.from_settings(gateway_app.settings, environ=ENV)


@pytest.fixture
def client(gateway_app: bootstrap.App, tokens: Tokens) -> Iterator[TestClient]:
    with TestClient(platform_api.create_app(gateway_app, tokens)) as found:
        yield found


def auth(token: str = TOKEN_A, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def url(partner: str, path: str) -> str:
    return f"/v1/partners/{partner}/{path}"


def order_body(order_id: str, *lines: tuple[str, int], **channel: str) -> dict[str, Any]:
    return {"order_id": order_id, "lines": [{"sku": s, "quantity": q} for s, q in lines], **channel}


def place(
    client: TestClient, order_id: str, *lines: tuple[str, int], key: str | None = None, partner: str = "acme", **ch: str
) -> httpx.Response:
    token = TOKEN_A if partner == "acme" else TOKEN_B
    headers = auth(token, **{"Idempotency-Key": key or f"key-{order_id}"})
    return client.post(url(partner, "orders"), json=order_body(order_id, *lines, **ch), headers=headers)


def set_stock(client: TestClient, sku: str, quantity: int, partner: str = "acme", token: str = TOKEN_A) -> None:
    answer = client.put(url(partner, f"stock/{sku}"), json={"quantity": quantity}, headers=auth(token))
    assert answer.status_code == 200, answer.text


def ats_of(client: TestClient, sku: str, partner: str = "acme", token: str = TOKEN_A) -> dict[str, Any]:
    answer = client.get(url(partner, "ats"), params={"sku": sku}, headers=auth(token))
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()[0]
    return found


def channel_of(client: TestClient, sku: str, collection: str = COL) -> dict[str, Any]:
    params = {"sku": sku, "assembly": ASM, "collection": collection}
    answer = client.get(url("acme", "ats"), params=params, headers=auth())
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()[0]
    return found


def problem(answer: httpx.Response, status: int, code: str, *phrases: str) -> dict[str, Any]:
    """The answer is RFC 9457 problem details with this status and code, its detail naming every phrase."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].split(";")[0] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://stock-gateway.example/problems/{code}"
    assert body["title"]
    for phrase in phrases:
        assert phrase in body["detail"], (phrase, body["detail"])
    return body


def order_count(app: bootstrap.App, partner: str) -> int:
    with app.store.read() as tx:
        partner_id = tx.partners.id_of(partner)
    with app.store.engine.connect() as connection:
        query = select(func.count()).select_from(schema.orders).where(schema.orders.c.partner_id == partner_id)
        return int(connection.execute(query).scalar_one())


def placed_ids(app: bootstrap.App, partner: str) -> set[str]:
    with app.store.read() as tx:
        partner_id = tx.partners.id_of(partner)
    with app.store.engine.connect() as connection:
        query = select(schema.orders.c.order_id).where(schema.orders.c.partner_id == partner_id)
        return {row[0] for row in connection.execute(query)}


# every endpoint's success shape


def test_stock_and_ats_per_sku(client: TestClient) -> None:
    """PUT stock answers the ATS it moved; GET ats lists every SKU, or the asked ones (unknown: zeros)."""
    answer = client.put(url("acme", "stock/EGGS"), json={"quantity": 30}, headers=auth())
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "partner": "acme",
        "order_id": None,
        "ats_changes": [{"sku": "EGGS", "before": None, "after": 30}],
        "warnings": [],
    }
    answer = client.put(
        url("acme", "stock/MILK"), json={"quantity": 5, "as_of": "2025-12-31T10:00:00+00:00"}, headers=auth()
    )
    assert answer.json()["ats_changes"] == [{"sku": "MILK", "before": None, "after": 5}]
    answer = client.put(url("acme", "stock/EGGS"), json={"quantity": 25}, headers=auth())
    assert answer.json()["ats_changes"] == [{"sku": "EGGS", "before": 30, "after": 25}]

    everything = client.get(url("acme", "ats"), headers=auth())
    assert everything.status_code == 200
    assert sorted(everything.json(), key=lambda v: v["sku"]) == [
        {"sku": "EGGS", "stock": 25, "allocated": 0, "ats": 25, "oversold": False, "as_of": "2026-01-01T00:00:00Z"},
        {"sku": "MILK", "stock": 5, "allocated": 0, "ats": 5, "oversold": False, "as_of": "2025-12-31T10:00:00Z"},
    ]
    some = client.get(url("acme", "ats"), params=[("sku", "MILK"), ("sku", "NEVER"), ("sku", "MILK")], headers=auth())
    assert some.json() == [
        {"sku": "MILK", "stock": 5, "allocated": 0, "ats": 5, "oversold": False, "as_of": "2025-12-31T10:00:00Z"},
        {"sku": "NEVER", "stock": 0, "allocated": 0, "ats": 0, "oversold": False, "as_of": None},
    ]


def test_stock_without_offset_is_read_in_the_partners_zone(client: TestClient) -> None:
    """acme is in Paris: 10:00 without an offset is 09:00 UTC in winter."""
    client.put(url("acme", "stock/EGGS"), json={"quantity": 3, "as_of": "2025-12-31T10:00:00"}, headers=auth())
    assert ats_of(client, "EGGS")["as_of"] == "2025-12-31T09:00:00Z"


def test_a_stale_stock_level_is_refused(client: TestClient) -> None:
    """A level older than the SKU's inventory timestamp: 409 stale, and the level stays."""
    client.put(url("acme", "stock/EGGS"), json={"quantity": 9, "as_of": "2025-12-31T12:00:00Z"}, headers=auth())
    answer = client.put(
        url("acme", "stock/EGGS"), json={"quantity": 1, "as_of": "2025-12-31T11:00:00Z"}, headers=auth()
    )
    problem(answer, 409, "stale", "EGGS", "older than the current inventory timestamp")
    assert ats_of(client, "EGGS")["stock"] == 9


def test_ats_marks_a_sku_whose_stock_is_below_its_allocation_oversold(client: TestClient) -> None:
    """Allocation 8, level set to 5: `oversold` true (the published ATS stays 0); the other SKU false."""
    for sku in ("W1", "W2"):
        set_stock(client, sku, 10, partner="bolt", token=TOKEN_B)
    assert place(client, "O1", ("W1", 8), ("W2", 1), partner="bolt").status_code == 201
    set_stock(client, "W1", 5, partner="bolt", token=TOKEN_B)
    answer = client.get(url("bolt", "ats"), params=[("sku", "W1"), ("sku", "W2")], headers=auth(TOKEN_B))
    assert [(v["sku"], v["stock"], v["allocated"], v["ats"], v["oversold"]) for v in answer.json()] == [
        ("W1", 5, 8, 0, True),
        ("W2", 10, 1, 9, False),
    ]


def test_place_an_order(client: TestClient, gateway_app: bootstrap.App) -> None:
    """201 with the ATS changes (lines of one SKU merged); the lines allocate."""
    set_stock(client, "EGGS", 30)
    set_stock(client, "MILK", 10)
    answer = place(client, "O1", ("EGGS", 4), ("MILK", 1), ("EGGS", 2))
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "partner": "acme",
        "order_id": "O1",
        "ats_changes": [{"sku": "EGGS", "before": 30, "after": 24}, {"sku": "MILK", "before": 10, "after": 9}],
    }
    assert ats_of(client, "EGGS") == {
        "sku": "EGGS",
        "stock": 30,
        "allocated": 6,
        "ats": 24,
        "oversold": False,
        "as_of": "2026-01-01T00:00:00Z",
    }
    assert placed_ids(gateway_app, "acme") == {"O1"}


def test_explain(client: TestClient) -> None:
    """The snapshot, every allocating line with its rule, the count of lines allocating nothing."""
    client.put(url("acme", "stock/EGGS"), json={"quantity": 30, "as_of": "2025-12-31T23:00:00Z"}, headers=auth())
    place(client, "O1", ("EGGS", 4))
    place(client, "O2", ("EGGS", 3))
    client.post(url("acme", "orders/O2/status"), json={"status": "cancelled"}, headers=auth())
    answer = client.get(url("acme", "ats/EGGS/explain"), headers=auth())
    assert answer.status_code == 200
    assert answer.json() == {
        "sku": "EGGS",
        "mode": "time_based",
        "stock": 30,
        "as_of": "2025-12-31T23:00:00Z",
        "allocated": 4,
        "ats": 26,
        "set_by_ledger_entry": None,
        "lines": [
            {
                "order_id": "O1",
                "status": "pending",
                "quantity": 4,
                "confirmed_quantity": None,
                "units": 4,
                "rule": "pending line (ordered quantity)",
            }
        ],
        "non_allocating_lines": 0,
    }
    never = client.get(url("acme", "ats/NEVER/explain"), headers=auth()).json()
    assert (never["stock"], never["ats"], never["lines"], never["as_of"]) == (0, 0, [], None)


def test_status_moves(client: TestClient) -> None:
    """Forward moves answer 200 with the ATS they moved; cancelling frees the units; the same status is a no-op."""
    set_stock(client, "EGGS", 10)
    place(client, "O1", ("EGGS", 4))
    answer = client.post(url("acme", "orders/O1/status"), json={"status": "confirmed"}, headers=auth())
    assert answer.status_code == 200
    assert answer.json() == {"partner": "acme", "order_id": "O1", "ats_changes": []}
    again = client.post(url("acme", "orders/O1/status"), json={"status": "confirmed"}, headers=auth())
    assert again.json() == {"partner": "acme", "order_id": "O1", "ats_changes": []}
    cancel = client.post(url("acme", "orders/O1/status"), json={"status": "cancelled"}, headers=auth())
    assert cancel.json() == {
        "partner": "acme",
        "order_id": "O1",
        "ats_changes": [{"sku": "EGGS", "before": 6, "after": 10}],
    }


def test_an_illegal_status_move_is_409(client: TestClient) -> None:
    set_stock(client, "EGGS", 10)
    place(client, "O1", ("EGGS", 4))
    client.post(url("acme", "orders/O1/status"), json={"status": "closed"}, headers=auth())
    answer = client.post(url("acme", "orders/O1/status"), json={"status": "pending"}, headers=auth())
    problem(answer, 409, "illegal_transition", "order O1", "cannot move from closed to pending")
    answer = client.post(url("acme", "orders/O1/status"), json={"status": "cancelled"}, headers=auth())
    problem(answer, 409, "illegal_transition", "cannot move from closed to cancelled")


def test_confirmations(client: TestClient) -> None:
    """acme is time based: a confirmed quantity below the ordered one frees the difference."""
    set_stock(client, "EGGS", 10)
    place(client, "O1", ("EGGS", 4))
    body = {"sku": "EGGS", "confirmed_quantity": 3, "confirmed_at": "2026-01-01T09:00:00"}
    answer = client.post(url("acme", "orders/O1/confirmations"), json=body, headers=auth())
    assert answer.status_code == 200
    assert answer.json() == {
        "partner": "acme",
        "order_id": "O1",
        "ats_changes": [{"sku": "EGGS", "before": 6, "after": 7}],
    }
    lines = client.get(url("acme", "ats/EGGS/explain"), headers=auth()).json()["lines"]
    assert [(line["confirmed_quantity"], line["units"]) for line in lines] == [(3, 3)]


def test_unknown_orders_and_lines_are_404(client: TestClient) -> None:
    set_stock(client, "EGGS", 10)
    place(client, "O1", ("EGGS", 4))
    answer = client.post(url("acme", "orders/NOPE/status"), json={"status": "confirmed"}, headers=auth())
    problem(answer, 404, "unknown_order", "order NOPE is unknown")
    confirmation = {"sku": "EGGS", "confirmed_quantity": 1, "confirmed_at": "2026-01-01T09:00:00Z"}
    answer = client.post(url("acme", "orders/NOPE/confirmations"), json=confirmation, headers=auth())
    problem(answer, 404, "unknown_order", "order NOPE is unknown")
    answer = client.post(url("acme", "orders/O1/confirmations"), json=confirmation | {"sku": "MILK"}, headers=auth())
    problem(answer, 404, "unknown_line", "order O1 holds no line for SKU MILK")


def test_caps_and_channel_ats(client: TestClient) -> None:
    """A collection's cap, the assembly default ("*"), an explicit no maximum; channel ATS follows each."""
    set_stock(client, "EGGS", 30)
    body = {"sku": "EGGS", "assembly": ASM, "collection": COL, "max": 10}
    answer = client.put(url("acme", "caps"), json=body, headers=auth())
    assert answer.status_code == 200
    assert answer.json() == {
        "partner": "acme",
        "order_id": None,
        "ats_changes": [],
        "sku": "EGGS",
        "assembly": ASM,
        "collection": COL,
        "max": 10,
        "cap_source": "collection override",
        "erased": [],
        "over_cap": [],
        "ongoing": [],
    }
    assert channel_of(client, "EGGS") == {
        "sku": "EGGS",
        "assembly": ASM,
        "collection": COL,
        "ats": 10,
        "cap": 10,
        "ordered": 0,
    }
    assert place(client, "O1", ("EGGS", 8), assembly=ASM, collection=COL).status_code == 201
    assert channel_of(client, "EGGS") == {
        "sku": "EGGS",
        "assembly": ASM,
        "collection": COL,
        "ats": 2,
        "cap": 10,
        "ordered": 8,
    }
    assert ats_of(client, "EGGS")["ats"] == 22

    default = {"sku": "EGGS", "assembly": ASM, "collection": "*", "max": 5}
    assert client.put(url("acme", "caps"), json=default, headers=auth()).status_code == 200
    assert (channel_of(client, "EGGS", "2027-01-05")["cap"], channel_of(client, "EGGS", "2027-01-05")["ats"]) == (5, 5)
    assert channel_of(client, "EGGS")["ats"] == 0  # the default replaced the collection's own cap: 8 > 5

    unlimited = {"sku": "EGGS", "assembly": ASM, "collection": COL2, "max": None}
    assert client.put(url("acme", "caps"), json=unlimited, headers=auth()).status_code == 200
    assert channel_of(client, "EGGS", COL2) == {
        "sku": "EGGS",
        "assembly": ASM,
        "collection": COL2,
        "ats": 22,
        "cap": None,
        "ordered": 0,
    }


def test_a_reached_cap_is_409_with_what_was_available(client: TestClient, gateway_app: bootstrap.App) -> None:
    set_stock(client, "EGGS", 30)
    set_stock(client, "MILK", 30)
    client.put(url("acme", "caps"), json={"sku": "EGGS", "assembly": ASM, "collection": COL, "max": 10}, headers=auth())
    place(client, "O1", ("EGGS", 8), assembly=ASM, collection=COL)
    before = contents(gateway_app)
    answer = place(client, "O2", ("MILK", 1), ("EGGS", 3), assembly=ASM, collection=COL)
    body = problem(answer, 409, "cap_reached", "order O2", f"cap of collection {COL}", ASM, "SKU EGGS wants 3")
    assert body["available"] == [{"sku": "EGGS", "requested": 3, "available": 2, "cap": 10, "ordered": 8}]
    after = contents(gateway_app)
    assert after.pop("platform_requests") != before.pop("platform_requests")  # the refusal is kept for its key
    assert after == before  # all lines or none: MILK was not placed either


def test_not_enough_ats_is_409_with_what_was_available(client: TestClient, gateway_app: bootstrap.App) -> None:
    set_stock(client, "EGGS", 5)
    set_stock(client, "MILK", 30)
    place(client, "O1", ("EGGS", 3))
    answer = place(client, "O2", ("MILK", 2), ("EGGS", 4), ("NEVER", 1))
    body = problem(answer, 409, "insufficient_stock", "order O2", "not enough available", "SKU EGGS wants 4, 2")
    assert sorted(body["available"], key=lambda s: s["sku"]) == [
        {"sku": "EGGS", "requested": 4, "available": 2},
        {"sku": "NEVER", "requested": 1, "available": 0},
    ]
    assert ats_of(client, "MILK")["ats"] == 30
    assert placed_ids(gateway_app, "acme") == {"O1"}


def test_an_order_id_placed_twice_is_refused(client: TestClient) -> None:
    set_stock(client, "EGGS", 5)
    place(client, "O1", ("EGGS", 1))
    problem(place(client, "O1", ("EGGS", 1), key="other"), 409, "order_exists", "order O1 already exists")
    assert ats_of(client, "EGGS")["ats"] == 4


# malformed requests


ORDER = order_body("O1", ("EGGS", 1))
CONFIRMATION = {"sku": "EGGS", "confirmed_quantity": 1, "confirmed_at": "2026-01-01T09:00:00Z"}
CAP = {"sku": "EGGS", "assembly": ASM, "collection": COL, "max": 3}
MALFORMED = [
    ("orders", ORDER | {"lines": "EGGS"}, "body.lines"),
    ("orders", ORDER | {"lines": [{"sku": "EGGS", "quantity": "lots"}]}, "body.lines.0.quantity"),
    ("orders", ORDER | {"lines": [{"sku": "EGGS", "quantity": -1}]}, "body.lines.0.quantity"),
    ("orders", ORDER | {"lines": [{"sku": "EGGS", "quantity": 0}]}, "body.lines.0.quantity"),
    ("orders", ORDER | {"lines": [{"sku": "EGGS"}]}, "body.lines.0.quantity: Field required"),
    ("orders", ORDER | {"lines": []}, "body.lines"),
    ("orders", {"lines": ORDER["lines"]}, "body.order_id: Field required"),
    ("orders", ORDER | {"order_id": 7}, "body.order_id"),
    ("orders", ORDER | {"order_id": ""}, "body.order_id"),
    ("orders", ORDER | {"priority": "high"}, "body.priority: Extra inputs are not permitted"),
    ("orders", ORDER | {"lines": [{"sku": "EGGS", "quantity": 1, "price": 2}]}, "body.lines.0.price"),
    ("orders", ORDER | {"assembly": ASM}, "assembly and collection go together"),
    ("orders", ORDER | {"collection": COL}, "assembly and collection go together"),
    ("orders", [ORDER], "body"),
    ("orders/O1/status", {"status": "shipped"}, "body.status"),
    ("orders/O1/status", {}, "body.status: Field required"),
    ("orders/O1/status", {"status": "closed", "why": "x"}, "body.why: Extra inputs are not permitted"),
    ("orders/O1/confirmations", CONFIRMATION | {"confirmed_at": "yesterday"}, "body.confirmed_at"),
    ("orders/O1/confirmations", CONFIRMATION | {"confirmed_at": "2026-13-01T00:00:00Z"}, "body.confirmed_at"),
    ("orders/O1/confirmations", CONFIRMATION | {"confirmed_quantity": -1}, "body.confirmed_quantity"),
    ("orders/O1/confirmations", {"sku": "EGGS", "confirmed_quantity": 1}, "body.confirmed_at: Field required"),
    ("caps", CAP | {"max": -1}, "body.max"),
    ("caps", CAP | {"max": "ten"}, "body.max"),
    ("caps", {"sku": "EGGS", "assembly": ASM, "collection": COL}, "body.max: Field required"),
    ("caps", CAP | {"collection": "2026-*"}, "collection: a name, or * for all collections"),
    ("caps", CAP | {"scope": "all"}, "body.scope: Extra inputs are not permitted"),
    ("stock/EGGS", {"quantity": -5}, "body.quantity"),
    ("stock/EGGS", {"quantity": "many"}, "body.quantity"),
    ("stock/EGGS", {}, "body.quantity: Field required"),
    ("stock/EGGS", {"quantity": 1, "as_of": "noon"}, "body.as_of"),
    ("stock/EGGS", {"quantity": 1, "warehouse": "W1"}, "body.warehouse: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(
    ("path", "body", "phrase"), MALFORMED, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(MALFORMED)]
)
def test_malformed_bodies_are_422(
    client: TestClient, gateway_app: bootstrap.App, path: str, body: Any, phrase: str
) -> None:
    """A malformed body is 422 naming the field and why; nothing changes."""
    set_stock(client, "EGGS", 10)
    place(client, "O1", ("EGGS", 1), key="setup")
    before = contents(gateway_app)
    method = "PUT" if path.startswith(("caps", "stock")) else "POST"
    headers = auth(**{"Idempotency-Key": "malformed"})
    answer = client.request(method, url("acme", path), json=body, headers=headers)
    problem(answer, 422, "malformed", phrase)
    assert contents(gateway_app) == before


def test_a_body_that_is_not_json_is_422(client: TestClient) -> None:
    headers = auth(**{"Idempotency-Key": "k", "Content-Type": "application/json"})
    problem(client.post(url("acme", "orders"), content=b"{not json", headers=headers), 422, "malformed", "JSON")


def test_validation_errors_are_listed_one_by_one(client: TestClient) -> None:
    body = {"order_id": "", "lines": [{"sku": "EGGS", "quantity": -1}], "extra": 1}
    answer = client.post(url("acme", "orders"), json=body, headers=auth(**{"Idempotency-Key": "k"}))
    errors = problem(answer, 422, "malformed")["errors"]
    assert sorted(e["where"] for e in errors) == ["body.extra", "body.lines.0.quantity", "body.order_id"]
    assert all(e["message"] for e in errors)


def test_a_missing_idempotency_key_is_422(client: TestClient, gateway_app: bootstrap.App) -> None:
    set_stock(client, "EGGS", 10)
    answer = client.post(url("acme", "orders"), json=ORDER, headers=auth())
    problem(answer, 422, "malformed", "header.idempotency-key: Field required")
    answer = client.post(url("acme", "orders"), json=ORDER, headers=auth(**{"Idempotency-Key": ""}))
    problem(answer, 422, "malformed", "header.idempotency-key")
    assert placed_ids(gateway_app, "acme") == set()


@pytest.mark.parametrize(
    ("params", "phrase"),
    [
        ({"sku": "EGGS", "assembly": ASM}, "assembly and collection go together"),
        ({"sku": "EGGS", "collection": COL}, "assembly and collection go together"),
        ({"assembly": ASM, "collection": COL}, "a collection's ATS needs at least one sku"),
        ({"sku": "EGGS", "assembly": "", "collection": COL}, "query.assembly"),
    ],
)
def test_malformed_ats_queries_are_422(client: TestClient, params: dict[str, str], phrase: str) -> None:
    problem(client.get(url("acme", "ats"), params=params, headers=auth()), 422, "malformed", phrase)


# idempotency


def test_the_same_key_and_body_answer_the_first_answer_again(client: TestClient, gateway_app: bootstrap.App) -> None:
    """The order is placed once; the replay is the first answer (its ATS changes too), not a new placement."""
    set_stock(client, "EGGS", 10)
    first = place(client, "O1", ("EGGS", 3), key="k1")
    set_stock(client, "EGGS", 20)  # the world moves on: the replay still tells the first answer
    again = place(client, "O1", ("EGGS", 3), key="k1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["content-type"] == "application/json"
    assert (
        again.json()
        == first.json()
        == {
            "partner": "acme",
            "order_id": "O1",
            "ats_changes": [{"sku": "EGGS", "before": 10, "after": 7}],
        }
    )
    assert placed_ids(gateway_app, "acme") == {"O1"}
    assert ats_of(client, "EGGS")["ats"] == 17


def test_a_refusal_is_the_first_answer_too(client: TestClient, gateway_app: bootstrap.App) -> None:
    """Refused for stock, then stock arrives: the same key and body is refused again, with the first figures."""
    set_stock(client, "EGGS", 2)
    first = place(client, "O1", ("EGGS", 3), key="k1")
    problem(first, 409, "insufficient_stock")
    set_stock(client, "EGGS", 50)
    again = place(client, "O1", ("EGGS", 3), key="k1")
    body = problem(again, 409, "insufficient_stock", "SKU EGGS wants 3, 2 available")
    assert body == first.json()
    assert body["available"] == [{"sku": "EGGS", "requested": 3, "available": 2}]
    assert placed_ids(gateway_app, "acme") == set()
    assert place(client, "O1", ("EGGS", 3), key="k2").status_code == 201


def test_a_key_reused_with_another_body_is_409(client: TestClient, gateway_app: bootstrap.App) -> None:
    set_stock(client, "EGGS", 10)
    place(client, "O1", ("EGGS", 3), key="k1")
    for other in (order_body("O2", ("EGGS", 3)), order_body("O1", ("EGGS", 4)), order_body("O1", ("EGGS", 3)) | CH):
        answer = client.post(url("acme", "orders"), json=other, headers=auth(**{"Idempotency-Key": "k1"}))
        problem(answer, 409, "idempotency_key_reused", "Idempotency-Key k1", "another body")
    assert placed_ids(gateway_app, "acme") == {"O1"}
    assert ats_of(client, "EGGS")["ats"] == 7
    # also when the first answer was a refusal
    place(client, "O9", ("EGGS", 99), key="k9")
    problem(place(client, "O9", ("EGGS", 1), key="k9"), 409, "idempotency_key_reused")
    assert placed_ids(gateway_app, "acme") == {"O1"}


def test_the_same_body_written_differently_is_the_same_request(client: TestClient) -> None:
    """Key order and explicit defaults do not make another body."""
    set_stock(client, "EGGS", 10)
    first = place(client, "O1", ("EGGS", 3), key="k1")
    same = {"lines": [{"quantity": 3, "sku": "EGGS"}], "collection": None, "order_id": "O1", "assembly": None}
    again = client.post(url("acme", "orders"), json=same, headers=auth(**{"Idempotency-Key": "k1"}))
    assert (again.status_code, again.json()) == (201, first.json())


def test_keys_are_per_partner(client: TestClient, gateway_app: bootstrap.App) -> None:
    """bolt's key k1 is not acme's key k1: both place their own order."""
    set_stock(client, "EGGS", 10)
    set_stock(client, "EGGS", 10, partner="bolt", token=TOKEN_B)
    assert place(client, "O1", ("EGGS", 3), key="k1").status_code == 201
    answer = place(client, "B1", ("EGGS", 5), key="k1", partner="bolt")
    assert answer.status_code == 201
    assert answer.json()["partner"] == "bolt"
    assert placed_ids(gateway_app, "acme") == {"O1"}
    assert placed_ids(gateway_app, "bolt") == {"B1"}


# access control


def endpoints(partner: str) -> list[tuple[str, str, dict[str, Any] | None, dict[str, str]]]:
    """A valid request to every endpoint of `partner` (in an order that makes each succeed)."""
    prefix = f"/v1/partners/{partner}"
    return [
        ("PUT", f"{prefix}/stock/EGGS", {"quantity": 40}, {}),
        ("PUT", f"{prefix}/caps", {"sku": "EGGS", "assembly": ASM, "collection": COL, "max": 10}, {}),
        ("GET", f"{prefix}/caps?sku=EGGS&assembly={ASM}", None, {}),
        ("DELETE", f"{prefix}/caps?sku=EGGS&assembly={ASM}&collection={COL2}", None, {}),
        ("PUT", f"{prefix}/collections", {"assembly": ASM, "collection": COL, "pickup_on": "2026-12-01"}, {}),
        ("GET", f"{prefix}/collections?assembly={ASM}", None, {}),
        ("POST", f"{prefix}/orders", order_body("X1", ("EGGS", 2), **CH), {"Idempotency-Key": "x1"}),
        ("POST", f"{prefix}/orders/X1/confirmations", CONFIRMATION, {}),
        ("POST", f"{prefix}/orders/X1/status", {"status": "confirmed"}, {}),
        ("GET", f"{prefix}/ats?sku=EGGS", None, {}),
        ("GET", f"{prefix}/ats?sku=EGGS&assembly={ASM}&collection={COL}", None, {}),
        ("GET", f"{prefix}/ats/EGGS/explain", None, {}),
        ("GET", f"{prefix}/orders/X1", None, {}),
        ("GET", f"{prefix}/orders?status=confirmed&allocating=true", None, {}),
    ]


def test_the_endpoint_list_covers_every_route(client: TestClient) -> None:
    """So the access tests below cannot miss a route added later."""
    app = client.app
    assert isinstance(app, FastAPI)
    routes = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    listed = {
        (method, path.split("?")[0].replace("/p/", "/{partner}/").replace("/orders/X1", "/orders/{order_id}"))
        for method, path, _, _ in endpoints("p")
    }
    listed = {(m, p.replace("/stock/EGGS", "/stock/{sku}").replace("/ats/EGGS/", "/ats/{sku}/")) for m, p in listed}
    assert routes == listed


def test_a_token_for_another_partner_is_403_on_every_endpoint(client: TestClient, gateway_app: bootstrap.App) -> None:
    """acme's token is refused on each of bolt's endpoints and changes nothing; bolt's own token succeeds."""
    before = contents(gateway_app)
    for method, path, body, headers in endpoints("bolt"):
        answer = client.request(method, path, json=body, headers=auth(TOKEN_A, **headers))
        problem(answer, 403, "forbidden", "may not act for partner bolt")
    assert contents(gateway_app) == before
    for method, path, body, headers in endpoints("bolt"):
        answer = client.request(method, path, json=body, headers=auth(TOKEN_B, **headers))
        assert answer.status_code in (200, 201), (path, answer.text)
    for method, path, body, headers in endpoints("acme"):
        problem(client.request(method, path, json=body, headers=auth(TOKEN_B, **headers)), 403, "forbidden")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong-token-0123456789abcdef",
        f"Bearer {TOKEN_A}x",
        f"Bearer {TOKEN_A[:-1]}",
        f"Basic {TOKEN_A}",
        f"Token {TOKEN_A}",
        TOKEN_A,
    ],
)
def test_no_token_or_a_wrong_one_is_401_on_every_endpoint(
    client: TestClient, gateway_app: bootstrap.App, authorization: str | None
) -> None:
    before = contents(gateway_app)
    for method, path, body, extra in endpoints("acme"):
        headers = extra if authorization is None else {"Authorization": authorization, **extra}
        answer = client.request(method, path, json=body, headers=headers)
        problem(answer, 401, "unauthorized", "a valid bearer token is required")
        assert answer.headers["www-authenticate"] == "Bearer"
    assert contents(gateway_app) == before


def test_401_comes_before_body_validation(client: TestClient) -> None:
    """Without a token, a (well-formed JSON) malformed body still tells nothing but 401."""
    answer = client.post(url("acme", "orders"), json={"lines": "x"})
    problem(answer, 401, "unauthorized")


def test_the_bearer_scheme_is_case_insensitive(client: TestClient) -> None:
    answer = client.get(url("acme", "ats"), headers={"Authorization": f"bearer {TOKEN_A}"})
    assert answer.status_code == 200


def test_an_unknown_partner_is_404_on_every_endpoint(client: TestClient) -> None:
    """With a token for all partners; a token for one partner gets 403 (it may not even learn who exists)."""
    for method, path, body, headers in endpoints("nobody"):
        answer = client.request(method, path, json=body, headers=auth(TOKEN_ALL, **headers))
        problem(answer, 404, "unknown_partner", "partner nobody is unknown")
        problem(client.request(method, path, json=body, headers=auth(TOKEN_A, **headers)), 403, "forbidden")


def test_a_token_for_all_partners_acts_for_each(client: TestClient) -> None:
    set_stock(client, "EGGS", 7, partner="acme", token=TOKEN_ALL)
    set_stock(client, "EGGS", 8, partner="bolt", token=TOKEN_ALL)
    assert ats_of(client, "EGGS", "acme", TOKEN_ALL)["ats"] == 7
    assert ats_of(client, "EGGS", "bolt", TOKEN_ALL)["ats"] == 8


def test_no_partner_sees_anothers_data(client: TestClient) -> None:
    """The same SKU and order ids at both partners: each token sees and moves only its own."""
    set_stock(client, "EGGS", 10)
    set_stock(client, "EGGS", 100, partner="bolt", token=TOKEN_B)
    set_stock(client, "BOLT-ONLY", 5, partner="bolt", token=TOKEN_B)
    place(client, "B1", ("BOLT-ONLY", 2), partner="bolt")
    place(client, "O1", ("EGGS", 30), partner="bolt", **CH)
    place(client, "O1", ("EGGS", 1))

    listing = client.get(url("acme", "ats"), headers=auth()).json()
    assert [(v["sku"], v["stock"], v["allocated"]) for v in listing] == [("EGGS", 10, 1)]
    assert ats_of(client, "BOLT-ONLY")["stock"] == 0
    explained = client.get(url("acme", "ats/EGGS/explain"), headers=auth()).json()
    assert [(line["order_id"], line["quantity"]) for line in explained["lines"]] == [("O1", 1)]
    assert channel_of(client, "EGGS")["ordered"] == 0
    answer = client.post(url("acme", "orders/B1/status"), json={"status": "cancelled"}, headers=auth())
    problem(answer, 404, "unknown_order", "order B1 is unknown")
    answer = client.post(url("acme", "orders/O1/status"), json={"status": "cancelled"}, headers=auth())
    assert answer.json()["ats_changes"] == [{"sku": "EGGS", "before": 9, "after": 10}]
    assert ats_of(client, "EGGS", "bolt", TOKEN_B) == {
        "sku": "EGGS",
        "stock": 100,
        "allocated": 30,
        "ats": 70,
        "oversold": False,
        "as_of": "2026-01-01T00:00:00Z",
    }
    assert ats_of(client, "BOLT-ONLY", "bolt", TOKEN_B)["allocated"] == 2


def test_tokens_come_from_the_environment_or_a_file_and_are_long_enough(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "bolt.token").write_text(f"  {TOKEN_B}\n", encoding="utf-8")
    api = TOKENS_TOML.replace('token_env = "TOKEN_BOLT"', 'token_file = "secrets/bolt.token"')
    loaded = settings.load(write_api_config(tmp_path, api), environ={})
    tokens = Tokens.from_settings(loaded, environ=ENV)
    assert [g.name for g in tokens.grants] == ["acme-checkout", "bolt-office", "operator"]
    grant = tokens.grant(f"Bearer {TOKEN_B}")
    assert grant is not None
    assert (grant.name, grant.allows("bolt"), grant.allows("acme")) == ("bolt-office", True, False)
    assert tokens.grant(f"Bearer {TOKEN_ALL}").allows("anyone")  # type: ignore[union-attr]
    assert all(TOKEN_B.encode() not in g.digest for g in tokens.grants)  # kept as digests only
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        Tokens.from_settings(loaded, environ=ENV | {"TOKEN_ACME": "short-token"})
    with pytest.raises(ConfigError, match="TOKEN_ALL is not set"):
        Tokens.from_settings(loaded, environ={"TOKEN_ACME": TOKEN_A})


# the real server: races for the last units


@dataclass
class Live:
    base: str
    app: bootstrap.App


@contextmanager
def serving(app: bootstrap.App, tokens: Tokens) -> Iterator[Live]:
    """uvicorn for real on a free loopback port, in a thread, until the block ends."""
    server = platform_api.server(app, tokens, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server stopped"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Live(f"http://127.0.0.1:{port}/v1/partners/acme", app)
    finally:
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive()


@pytest.fixture
def live(gateway_app: bootstrap.App, tokens: Tokens) -> Iterator[Live]:
    """uvicorn for real on a free loopback port, in a thread."""
    with serving(gateway_app, tokens) as running:
        yield running


def race(live: Live, count: int, **channel: str) -> list[httpx.Response]:
    """`count` concurrent placements of 1 EGGS each, every one its own order and key."""
    barrier = threading.Barrier(32)

    def one(client: httpx.Client, i: int) -> httpx.Response:
        if i < 32:
            barrier.wait(10)
        body = order_body(f"R{i:03}", ("EGGS", 1), **channel)
        return client.post(f"{live.base}/orders", json=body, headers=auth(**{"Idempotency-Key": f"race-{i}"}))

    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(timeout=60, limits=limits) as client, ThreadPoolExecutor(32) as pool:
        return list(pool.map(lambda i: one(client, i), range(count)))


def store_ats(app: bootstrap.App, sku: str = "EGGS") -> queries.AtsView:
    with app.store.read() as tx:
        return queries.ats(tx, "acme", [sku])[0]


@pytest.mark.both_stores  # on PostgreSQL the placements really run side by side, each SKU locked in turn
def test_200_placements_race_for_50_units(live: Live) -> None:
    live.app.commands.set_stock("acme", "EGGS", 50, None)
    answers = race(live, 200)
    assert Counter(a.status_code for a in answers) == {201: 50, 409: 150}
    for answer in answers:
        if answer.status_code == 409:
            body = problem(answer, 409, "insufficient_stock")
            assert body["available"] == [{"sku": "EGGS", "requested": 1, "available": 0}]
    won = {a.json()["order_id"] for a in answers if a.status_code == 201}
    afters = sorted(a.json()["ats_changes"][0]["after"] for a in answers if a.status_code == 201)
    assert afters == list(range(50))  # each success took exactly one unit, none twice
    view = store_ats(live.app)
    assert (view.stock, view.allocated, view.ats) == (50, 50, 0)
    assert order_count(live.app, "acme") == 50
    assert placed_ids(live.app, "acme") == won


@pytest.mark.both_stores
def test_200_placements_race_for_a_collection_capped_at_20(live: Live) -> None:
    live.app.commands.set_stock("acme", "EGGS", 1000, None)
    cap = {"sku": "EGGS", "assembly": ASM, "collection": COL, "max": 20}
    assert httpx.put(f"{live.base}/caps", json=cap, headers=auth()).status_code == 200
    answers = race(live, 200, **CH)
    assert Counter(a.status_code for a in answers) == {201: 20, 409: 180}
    for answer in answers:
        if answer.status_code == 409:
            body = problem(answer, 409, "cap_reached", f"cap of collection {COL}")
            assert body["available"] == [{"sku": "EGGS", "requested": 1, "available": 0, "cap": 20, "ordered": 20}]
    params = {"sku": "EGGS", "assembly": ASM, "collection": COL}
    channel = httpx.get(f"{live.base}/ats", params=params, headers=auth()).json()
    assert channel == [{"sku": "EGGS", "assembly": ASM, "collection": COL, "ats": 0, "cap": 20, "ordered": 20}]
    view = store_ats(live.app)
    assert (view.stock, view.allocated, view.ats) == (1000, 20, 980)
    assert order_count(live.app, "acme") == 20


def test_concurrent_retries_of_one_key_all_get_the_first_answer(live: Live, gateway_app: bootstrap.App) -> None:
    """A client retrying while its first request still waits for the store: every retry is the first answer.

    Another writer (the worker's transaction, here a raw SQLite one) holds the store while the requests arrive, so
    they all look for the key before the first one is placed."""
    gateway_app.commands.set_stock("acme", "EGGS", 10, None)
    database = gateway_app.store.engine.url.database
    assert database is not None
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    body = order_body("O1", ("EGGS", 1))
    try:
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(4) as pool:
            pending = [
                pool.submit(client.post, f"{live.base}/orders", json=body, headers=auth(**{"Idempotency-Key": "retry"}))
                for _ in range(4)
            ]
            time.sleep(1.0)
            blocker.execute("ROLLBACK")
            answers = [p.result() for p in pending]
    finally:
        blocker.close()
    assert placed_ids(gateway_app, "acme") == {"O1"}
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1


def test_the_token_is_checked_before_anything_else(client: TestClient) -> None:
    headers = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    problem(client.post(url("acme", "orders"), content=b"{not json", headers=headers), 401, "unauthorized")
    problem(client.get(url("z" * 101, "ats")), 401, "unauthorized")
    headers = auth(TOKEN_A, **headers)
    problem(client.post(url("bolt", "orders"), content=b"{not json", headers=headers), 403, "forbidden")


def test_skus_and_order_ids_with_a_slash(client: TestClient) -> None:
    """Partners' SKUs and order ids often hold a slash (AB/12, 2026/0001): each endpoint must reach them."""
    answer = client.put(url("acme", "stock/AB%2F12"), json={"quantity": 5}, headers=auth())
    assert answer.status_code == 200, answer.text
    assert place(client, "2026/0001", ("AB/12", 1)).status_code == 201
    answer = client.post(url("acme", "orders/2026%2F0001/status"), json={"status": "cancelled"}, headers=auth())
    assert answer.status_code == 200, answer.text
    assert client.get(url("acme", "ats/AB%2F12/explain"), headers=auth()).json()["sku"] == "AB/12"


def test_unknown_routes_and_methods_answer_problem_details(client: TestClient) -> None:
    problem(client.get(url("acme", "nothing-here"), headers=auth()), 404, "not_found")
    problem(client.patch(url("acme", "caps"), headers=auth()), 405, "method_not_allowed")


# `gateway serve`


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_gateway_serve_answers_and_never_prints_the_token(tmp_path: Path) -> None:
    (tmp_path / "acme.token").write_text(TOKEN_A + "\n", encoding="utf-8")
    api = TOKENS_TOML.replace('token_env = "TOKEN_ACME"', 'token_file = "acme.token"')
    config = write_api_config(tmp_path, api)
    seeded = bootstrap.build(settings.load(config, environ={}))
    seeded.commands.set_stock("acme", "EGGS", 12, None)
    seeded.close()
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "TOKEN_BOLT": TOKEN_B,
        "TOKEN_ALL": TOKEN_ALL,
    }
    command = [sys.executable, "-m", "gateway", "--config", str(config), "--log-level", "debug", "serve"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}/v1/partners"
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.communicate()
            try:
                answer = httpx.get(f"{base}/acme/ats", params={"sku": "EGGS"}, headers=auth(TOKEN_A), timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "gateway serve did not answer"
                time.sleep(0.1)
        assert answer.status_code == 200
        assert answer.json() == [
            {
                "sku": "EGGS",
                "stock": 12,
                "allocated": 0,
                "ats": 12,
                "oversold": False,
                "as_of": answer.json()[0]["as_of"],
            }
        ]
        assert httpx.get(f"{base}/acme/ats", timeout=5).status_code == 401
        assert httpx.get(f"{base}/bolt/ats", headers=auth(TOKEN_A), timeout=5).status_code == 403
        placed = httpx.post(
            f"{base}/acme/orders",
            json=order_body("S1", ("EGGS", 2)),
            headers=auth(TOKEN_A, **{"Idempotency-Key": "s1"}),
            timeout=5,
        )
        assert placed.status_code == 201
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    # uvicorn re-raises the SIGTERM it caught once it has shut down: 143 rather than 0 (reported, see the module doc)
    assert process.returncode in (0, -signal.SIGTERM), err
    for secret in (TOKEN_A, TOKEN_B, TOKEN_ALL):
        assert secret not in out
        assert secret not in err
