"""Caps over the platform API served by uvicorn for real (issue 15, item 11): `PUT caps` answers what it erased and
which collections are over their cap, `GET caps` lists each collection with its units and what is left, `DELETE
caps` returns one collection to the assembly default (idempotent), and the command line's `--json` reads the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import bootstrap, settings
from gateway.access import Tokens
from tests.conftest import FakeClock
from tests.integration.helpers import contents
from tests.integration.test_platform_api import ENV, TOKEN_A, TOKEN_B, Live, problem, serving, write_api_config
from tests.support import cli as in_process

pytestmark = pytest.mark.both_stores

ASM, COL, COL2 = "paris-11", "2026-12-01", "2026-12-08"
AUTH = {"Authorization": f"Bearer {TOKEN_A}"}


class Api:
    """acme's caps over the live API, and the command line over the same store."""

    def __init__(self, live: Live, config: Path) -> None:
        self.live = live
        self.config = config
        self.http = httpx.Client(base_url=live.base, headers=AUTH, timeout=30)

    def put(self, collection: str, limit: int | None, sku: str = "EGGS") -> httpx.Response:
        body = {"sku": sku, "assembly": ASM, "collection": collection, "max": limit}
        return self.http.put("/caps", json=body)

    def place(self, order_id: str, quantity: int, collection: str = COL) -> None:
        body = {"order_id": order_id, "lines": [{"sku": "EGGS", "quantity": quantity}], "assembly": ASM}
        answer = self.http.post(
            "/orders", json=body | {"collection": collection}, headers={"Idempotency-Key": order_id}
        )
        assert answer.status_code == 201, answer.text

    def channel(self, collection: str = COL) -> dict[str, Any]:
        params = {"sku": "EGGS", "assembly": ASM, "collection": collection}
        [found] = self.http.get("/ats", params=params).json()
        return dict(found)

    def cli_json(self, *args: str) -> Any:
        done = in_process.run(["--config", str(self.config), "--log-level", "warning", *args, "--json"])
        assert done.returncode == 0, (done.stdout, done.stderr)
        return json.loads(done.stdout)


@pytest.fixture
def api(tmp_path: Path, clock: FakeClock, store_url: str) -> Iterator[Api]:
    """acme (time based) with 30 EGGS, served for real."""
    config = write_api_config(tmp_path, store_url=store_url)
    app = bootstrap.build(settings.load(config, environ={}), clock=clock)
    try:
        app.commands.set_stock("acme", "EGGS", 30, None)
        with serving(app, Tokens.from_settings(app.settings, environ=ENV)) as live:
            found = Api(live, config)
            yield found
            found.http.close()
    finally:
        app.close()


def test_put_caps_for_all_collections_answers_what_it_erased_and_what_is_over(api: Api) -> None:
    """The default replaces both collections' own settings; the collection holding 8 is over the new cap of 5."""
    assert api.put(COL, 10).json() == {
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
    api.put(COL2, None)
    api.place("O1", 8)
    answer = api.put("*", 5)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["collection"], body["max"], body["cap_source"]) == ("*", 5, "assembly default")
    assert body["erased"] == [{"collection": COL, "max": 10}, {"collection": COL2, "max": None}]
    assert body["over_cap"] == [{"collection": COL, "ordered": 8, "cap": 5}]
    assert api.channel()["ats"] == 0


def test_get_caps_lists_each_collection_with_its_units_and_what_is_left(api: Api) -> None:
    """The default, the collection over it (negative remaining, flagged), an explicit no maximum; filtered by SKU
    and assembly; the same objects as `gateway cap show --json`."""
    api.put(COL, 10)
    api.place("O1", 8)
    api.put("*", 5)
    api.put(COL2, None)
    api.put(COL, 3, sku="BOX/12")  # a SKU with a slash, named in the query
    everything = api.http.get("/caps")
    assert everything.status_code == 200
    assert everything.json() == [
        {"sku": "BOX/12", "assembly": ASM, "collection": COL, "max": 3, "cap_source": "collection override",
         "ordered": 0, "remaining": 3, "over_cap": False},
        {"sku": "EGGS", "assembly": ASM, "collection": "*", "max": 5, "cap_source": "assembly default",
         "ordered": None, "remaining": None, "over_cap": False},
        {"sku": "EGGS", "assembly": ASM, "collection": COL, "max": 5, "cap_source": "assembly default",
         "ordered": 8, "remaining": -3, "over_cap": True},
        {"sku": "EGGS", "assembly": ASM, "collection": COL2, "max": None, "cap_source": "collection override",
         "ordered": 0, "remaining": None, "over_cap": False},
    ]  # fmt: skip
    assert everything.json() == api.cli_json("cap", "show", "--partner", "acme")
    box = api.http.get("/caps", params={"sku": "BOX/12"}).json()
    assert [line["sku"] for line in box] == ["BOX/12"]
    assert box == api.cli_json("cap", "show", "--partner", "acme", "--sku", "BOX/12")
    assert api.http.get("/caps", params={"sku": "EGGS", "assembly": "lyon-3"}).json() == []


def test_delete_caps_returns_one_collection_to_the_default_and_republishes_it(api: Api) -> None:
    """Its own cap of 10 goes: the default of 5 applies, the collection's ATS 2 -> 0 is queued, and it is over."""
    api.put("*", 5)
    api.put(COL, 10)
    api.place("O1", 8)
    assert api.channel()["ats"] == 2
    query = {"sku": "EGGS", "assembly": ASM, "collection": COL}
    answer = api.http.delete("/caps", params=query)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "partner": "acme",
        "order_id": None,
        "ats_changes": [],
        "sku": "EGGS",
        "assembly": ASM,
        "collection": COL,
        "max": 5,
        "cap_source": "assembly default",
        "erased": [{"collection": COL, "max": 10}],
        "over_cap": [{"collection": COL, "ordered": 8, "cap": 5}],
        "ongoing": [],
    }
    assert (api.channel()["ats"], api.channel()["cap"]) == (0, 5)
    with api.live.app.store.read() as tx:
        queued = {
            tuple(json.loads(m.key)): m.value
            for m in tx.outbox.rows(tx.partners.id_of("acme"))
            if m.kind == "channel_ats"
        }
    assert queued[("EGGS", ASM, COL)] == 0


def test_delete_caps_again_is_200_with_nothing_erased_and_changes_nothing(api: Api) -> None:
    """Idempotent: a collection with no setting of its own (or an assembly never capped) is answered, not 404."""
    api.put("*", 5)
    api.put(COL, 10)
    query = {"sku": "EGGS", "assembly": ASM, "collection": COL}
    assert api.http.delete("/caps", params=query).json()["erased"] == [{"collection": COL, "max": 10}]
    before = contents(api.live.app)
    again = api.http.delete("/caps", params=query)
    assert again.status_code == 200
    assert (again.json()["erased"], again.json()["max"], again.json()["cap_source"]) == ([], 5, "assembly default")
    nowhere = api.http.delete("/caps", params=query | {"assembly": "lyon-3"})
    assert (nowhere.json()["erased"], nowhere.json()["max"], nowhere.json()["cap_source"]) == ([], None, "none")
    assert contents(api.live.app) == before


@pytest.mark.parametrize(
    ("query", "phrase"),
    [
        ({"sku": "EGGS", "assembly": ASM}, "query.collection: Field required"),
        ({"sku": "EGGS", "collection": COL}, "query.assembly: Field required"),
        ({"assembly": ASM, "collection": COL}, "query.sku: Field required"),
        ({"sku": "EGGS", "assembly": ASM, "collection": "*"}, "collection: a name"),
        ({"sku": "EGGS", "assembly": ASM, "collection": "2026-*"}, "collection: a name"),
        ({"sku": "EGGS ", "assembly": ASM, "collection": COL}, "query.sku"),
    ],
)
def test_a_malformed_delete_caps_is_422_and_changes_nothing(api: Api, query: dict[str, str], phrase: str) -> None:
    """The collection is named (the default is set by PUT caps with "*"); every identifier by the one rule."""
    api.put(COL, 10)
    before = contents(api.live.app)
    problem(api.http.delete("/caps", params=query), 422, "malformed", phrase)
    assert contents(api.live.app) == before


def test_another_partners_token_may_neither_read_nor_clear_caps(api: Api) -> None:
    """bolt's token on acme's caps: 403, nothing changed."""
    api.put(COL, 10)
    other = {"Authorization": f"Bearer {TOKEN_B}"}
    problem(api.http.get("/caps", headers=other), 403, "forbidden")
    query = {"sku": "EGGS", "assembly": ASM, "collection": COL}
    problem(api.http.delete("/caps", params=query, headers=other), 403, "forbidden")
    assert [line["max"] for line in api.http.get("/caps").json()] == [10]
