"""The fast path of a placement (gateway.platform_api.fast) answers as the route does: the same requests, sent to the
API with it and to the API without it (the route alone) over two stores in the same state, get the same status,
headers and body, byte for byte. A request the route would take as it is gets its answer from the fast path; any
other (malformed, no key, an unknown partner...) is answered by the route, its body as it was read."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import bootstrap, platform_api, settings
from gateway.access import Tokens
from gateway.platform_api import fast
from tests.conftest import FakeClock
from tests.integration.test_platform_api import CH, ENV, TOKEN_A, TOKEN_ALL, write_api_config

with warnings.catch_warnings():  # starlette's TestClient names anyio.abc.BlockingPortal, an alias anyio deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

JSON = "application/json"


def order(order_id: str, *lines: tuple[str, Any], **extra: Any) -> bytes:
    return json.dumps({"order_id": order_id, "lines": [{"sku": s, "quantity": q} for s, q in lines], **extra}).encode()


# (what, partner, body, headers besides the token); sent in this order to both, so both stores move alike
REQUESTS: list[tuple[str, str, bytes, list[tuple[str, str]]]] = [
    ("placed", "acme", order("O1", ("EGGS", 2)), [("Content-Type", JSON), ("Idempotency-Key", "k1")]),
    ("replayed", "acme", order("O1", ("EGGS", 2)), [("Content-Type", JSON), ("Idempotency-Key", "k1")]),
    ("key reused", "acme", order("O1", ("EGGS", 3)), [("Content-Type", JSON), ("Idempotency-Key", "k1")]),
    ("not enough", "acme", order("O2", ("EGGS", 50)), [("Content-Type", JSON), ("Idempotency-Key", "k2")]),
    ("refusal replayed", "acme", order("O2", ("EGGS", 50)), [("Content-Type", JSON), ("Idempotency-Key", "k2")]),
    ("order exists", "acme", order("O1", ("EGGS", 1)), [("Content-Type", JSON), ("Idempotency-Key", "k3")]),
    (
        "byte order mark",
        "acme",
        b"\xef\xbb\xbf" + order("O3", ("EGGS", 1)),
        [("Content-Type", JSON), ("Idempotency-Key", "k4")],
    ),
    ("in a channel", "acme", order("O4", ("EGGS", 1), **CH), [("Content-Type", JSON), ("Idempotency-Key", "k5")]),
    (
        "half a channel",
        "acme",
        order("O5", ("EGGS", 1), assembly="a"),
        [("Content-Type", JSON), ("Idempotency-Key", "k6")],
    ),
    (
        "charset",
        "acme",
        order("O6", ("EGGS", 1)),
        [("Content-Type", f"{JSON}; charset=utf-8"), ("Idempotency-Key", "k7")],
    ),
    ("text", "acme", order("O7", ("EGGS", 1)), [("Content-Type", "text/plain"), ("Idempotency-Key", "k8")]),
    ("no key", "acme", order("O8", ("EGGS", 1)), [("Content-Type", JSON)]),
    ("empty key", "acme", order("O8", ("EGGS", 1)), [("Content-Type", JSON), ("Idempotency-Key", "")]),
    ("long key", "acme", order("O8", ("EGGS", 1)), [("Content-Type", JSON), ("Idempotency-Key", "k" * 201)]),
    (
        "two keys",
        "acme",
        order("O8", ("EGGS", 1)),
        [("Content-Type", JSON), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    ),
    ("not JSON", "acme", b'{"order_id": "O8", ', [("Content-Type", JSON), ("Idempotency-Key", "k9")]),
    ("not UTF-8", "acme", b'{"order_id": "\xff"}', [("Content-Type", JSON), ("Idempotency-Key", "k9")]),
    ("no body", "acme", b"", [("Content-Type", JSON), ("Idempotency-Key", "k9")]),
    ("a field more", "acme", order("O8", ("EGGS", 1), note="x"), [("Content-Type", JSON), ("Idempotency-Key", "k9")]),
    ("a float", "acme", order("O8", ("EGGS", 1.0)), [("Content-Type", JSON), ("Idempotency-Key", "k9")]),
    ("a bool", "acme", order("O8", ("EGGS", True)), [("Content-Type", JSON), ("Idempotency-Key", "k9")]),
    ("spaced id", "acme", order(" O8", ("EGGS", 1)), [("Content-Type", JSON), ("Idempotency-Key", "k9")]),
    ("unknown partner", "nobody", order("O8", ("EGGS", 1)), [("Content-Type", JSON), ("Idempotency-Key", "k9")]),
]
FAST = {"placed", "replayed", "key reused", "not enough", "refusal replayed", "order exists", "byte order mark"}
FAST |= {"in a channel", "half a channel"}  # the route's own check of a channel (assembly and collection, or neither)


@pytest.fixture
def clients(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[TestClient, TestClient]]:
    """The API with its fast path, and the API without it (the route alone), each over a store of its own."""
    built = []
    for name in ("fast", "route"):
        (tmp_path / name).mkdir()
        config = write_api_config(tmp_path / name, store_url=f"sqlite:///{tmp_path / name / 'gateway.db'}")
        built.append(bootstrap.build(settings.load(config, environ={}), clock=clock))
    fast_api, route_api = (
        platform_api.create_app(app, Tokens.from_settings(app.settings, environ=ENV)) for app in built
    )
    route_api.user_middleware = [m for m in route_api.user_middleware if m.cls is not fast.FastPlacement]
    try:
        with TestClient(fast_api) as with_fast, TestClient(route_api) as route_alone:
            yield with_fast, route_alone
    finally:
        for app in built:
            app.close()


def test_the_fast_path_answers_each_request_as_the_route_does(
    clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_fast, route_alone = clients
    answered_fast: list[str] = []
    place_order = fast.place_order

    async def counted(*args: Any) -> Any:
        answered_fast.append(args[2].order_id)
        return await place_order(*args)

    monkeypatch.setattr(fast, "place_order", counted)
    auth = {"Authorization": f"Bearer {TOKEN_A}"}
    for client in clients:
        stock = client.put("/v1/partners/acme/stock/EGGS", json={"quantity": 5}, headers=auth)
        assert stock.status_code == 200, stock.text
    for what, partner, body, headers in REQUESTS:
        token = TOKEN_ALL if partner == "nobody" else TOKEN_A
        sent = [("Authorization", f"Bearer {token}"), *headers]
        before = len(answered_fast)
        fast_answer = with_fast.post(f"/v1/partners/{partner}/orders", content=body, headers=sent)
        took = len(answered_fast) > before
        route_answer = route_alone.post(f"/v1/partners/{partner}/orders", content=body, headers=sent)
        assert len(answered_fast) == before + took  # the route alone never goes through the fast path
        assert fast_answer.status_code == route_answer.status_code, what
        assert fast_answer.headers == route_answer.headers, what
        assert fast_answer.content == route_answer.content, what
        assert took == (what in FAST), what
    ats = [client.get("/v1/partners/acme/ats", params={"sku": "EGGS"}, headers=auth).json() for client in clients]
    assert ats[0] == ats[1]
    assert ats[0][0]["ats"] == 5 - 2 - 1 - 1 - 1  # O1, O3, O4 (the fast path) and O6 (the route) placed, once each
