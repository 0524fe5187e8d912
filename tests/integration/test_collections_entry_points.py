"""Dated collections as a user reaches them (#18, rule 4), on both stores: `gateway collection set|show`, `gateway
ingest --kind collections`, `gateway order place` refused outside the window, `cap set --all-collections` saying
which collections are ongoing, and `PUT collections`, `GET collections`, `POST orders` over the API served for real.

The command line runs on the system clock: its windows closed in 2020 or open until 2099. The API's app runs on a
FakeClock set on Monday 7 December 2026, the producer's week."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import bootstrap, settings
from gateway.access import Tokens
from gateway.domain import instant
from tests.conftest import FIXTURES, FakeClock, write_config
from tests.e2e.test_cli import Cli
from tests.integration.test_platform_api import ENV, TOKEN_A, problem, serving, write_api_config

pytestmark = pytest.mark.both_stores

ASM = ("--assembly", "paris-11")
FRI = (*ASM, "--collection", "2026-12-11")
OLD = (*ASM, "--collection", "2020-week-1")
FAR = (*ASM, "--collection", "2099-week-1")


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    """A producer in Paris time with 30 EGGS."""
    run = Cli(write_config(tmp_path, {"farm": {"stock_mode": "advanced", "timezone": "Europe/Paris"}}, store_url))
    run("stock", "set", "--partner", "farm", "--sku", "EGGS", "--quantity", "30")
    return run


def test_collection_set_stores_the_window_and_pickup_date_and_show_lists_them(cli: Cli) -> None:
    """Times without an offset are the partner's (Paris, UTC+1 in December); --json carries the same values."""
    done = cli("collection", "set", "--partner", "farm", *FRI, "--opens-at", "2026-12-04T18:00", "--closes-at",
               "2026-12-09T18:00", "--pickup-on", "2026-12-11")  # fmt: skip
    assert done.stdout.splitlines() == [
        "collection 2026-12-11 of paris-11: takes orders from 2026-12-04T17:00:00Z until 2026-12-09T17:00:00Z, "
        f"pickup on 2026-12-11; {'open' if '2026-12-04T17' < _now() < '2026-12-09T17' else 'closed'} now"
    ]
    again = json.loads(
        cli("collection", "set", "--partner", "farm", *OLD, "--closes-at", "2020-01-06", "--json").stdout
    )
    assert again == {
        "assembly": "paris-11",
        "collection": "2020-week-1",
        "opens_at": None,
        "closes_at": "2020-01-05T23:00:00Z",
        "pickup_on": None,
        "open_now": False,
        "had_dates": False,
    }
    shown = json.loads(cli("collection", "show", "--partner", "farm", "--json").stdout)
    assert [(c["collection"], c["pickup_on"], c["open_now"]) for c in shown] == [
        ("2020-week-1", None, False),
        ("2026-12-11", "2026-12-11", _now() < "2026-12-09T17"),
    ]
    table = cli("collection", "show", "--partner", "farm", "--assembly", "paris-11").stdout.splitlines()
    assert table[0].split() == ["assembly", "collection", "opens_at", "closes_at", "pickup_on", "open_now"]
    assert table[1].split() == ["paris-11", "2020-week-1", "-", "2020-01-05T23:00:00Z", "-", "no"]
    assert cli("collection", "show", "--partner", "farm", "--assembly", "lyon-3", "--json").stdout.strip() == "[]"


def test_an_order_in_a_closed_collection_is_refused_with_exit_1_and_an_open_one_takes_it(cli: Cli) -> None:
    """`gateway: refused: ...` names the collection and when it closed; nothing is placed."""
    cli("collection", "set", "--partner", "farm", *OLD, "--closes-at", "2020-01-06T00:00:00Z")
    cli(
        "collection",
        "set",
        "--partner",
        "farm",
        *FAR,
        "--opens-at",
        "2020-01-01T00:00:00Z",
        "--pickup-on",
        "2099-01-02",
    )
    refused = cli("order", "place", "--partner", "farm", "--order-id", "O1", "--line", "EGGS:2", *OLD, expect=1)
    [said] = [line for line in refused.stderr.splitlines() if line.startswith("gateway: refused: ")]
    assert said.startswith("gateway: refused: order O1 refused, collection 2020-week-1 of assembly paris-11")
    assert said.endswith("it closed at 2020-01-06T00:00:00Z")
    assert cli.ats("farm", "EGGS")["ats"] == 30
    cli("order", "place", "--partner", "farm", "--order-id", "O2", "--line", "EGGS:2", *FAR)
    assert cli.ats("farm", "EGGS")["ats"] == 28


def test_a_window_closing_before_it_opens_or_a_bad_date_is_refused(cli: Cli) -> None:
    """An empty window is a refusal (exit 1), a date that is not one a usage error (exit 2); nothing is stored."""
    empty = cli("collection", "set", "--partner", "farm", *FRI, "--opens-at", "2026-12-09T18:00", "--closes-at",
                "2026-12-09T18:00", expect=1)  # fmt: skip
    [said] = [line for line in empty.stderr.splitlines() if line.startswith("gateway: refused: ")]
    assert "closes_at 2026-12-09T17:00:00Z is not after opens_at 2026-12-09T17:00:00Z" in said
    assert (
        "--pickup-on" in cli("collection", "set", "--partner", "farm", *FRI, "--pickup-on", "friday", expect=2).stderr
    )
    assert "--opens-at" in cli("collection", "set", "--partner", "farm", *FRI, "--opens-at", "soon", expect=2).stderr
    assert cli("collection", "show", "--partner", "farm", "--json").stdout.strip() == "[]"


def test_ingest_applies_a_collections_file_and_rejects_a_malformed_one_with_its_lines(cli: Cli) -> None:
    """The good file sets three rows (one of them no dates); the bad one exits 1 naming each line, nothing applied."""
    bad = cli("ingest", "--partner", "farm", "--kind", "collections", str(FIXTURES / "collections" / "bad_rows.csv"),
              expect=1)  # fmt: skip
    assert "line 2, column opens_at" in bad.stderr
    assert "line 3, column collection" in bad.stderr
    assert "line 4, column pickup_on" in bad.stderr
    assert cli("collection", "show", "--partner", "farm", "--json").stdout.strip() == "[]"
    good = cli("ingest", "--partner", "farm", "--kind", "collections", str(FIXTURES / "collections" / "good.csv"))
    assert "applied 3 row(s)" in good.stdout
    shown = json.loads(cli("collection", "show", "--partner", "farm", "--json").stdout)
    assert [(c["collection"], c["closes_at"], c["pickup_on"]) for c in shown] == [
        ("2026-12-11", "2026-12-09T17:00:00Z", "2026-12-11"),
        ("2026-12-18", "2026-12-16T17:00:00Z", "2026-12-18"),
    ]


def test_cap_set_for_all_collections_lists_the_ongoing_collections(cli: Cli) -> None:
    """The closed collection is not ongoing; the open one and the undated one are, in the text and in --json."""
    cli("collection", "set", "--partner", "farm", *OLD, "--closes-at", "2020-01-06T00:00:00Z")
    cli("collection", "set", "--partner", "farm", *FAR, "--opens-at", "2020-01-01T00:00:00Z")
    for collection in ("2020-week-1", "2099-week-1", "undated"):
        cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *ASM, "--collection", collection, "--max", "9")
    done = cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *ASM, "--all-collections", "--max", "5").stdout
    assert "  ongoing (open now, reached by the setting): 2099-week-1, undated" in done.splitlines()
    again = cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *ASM, "--all-collections", "--max", "4", "--json")
    assert json.loads(again.stdout)["ongoing"] == ["2099-week-1", "undated"]


def _now() -> str:
    """The system clock's now as the command line shows instants (whether Friday's collection is open today)."""
    return str(instant.to_iso(bootstrap.system_clock()))


# the platform API


class Api:
    """acme (Paris time) over the live API."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN_A}"}, timeout=30)

    def put(self, **body: Any) -> httpx.Response:
        return self.http.put("/collections", json={"assembly": "paris-11", **body})

    def order(self, order_id: str, collection: str) -> httpx.Response:
        body = {"order_id": order_id, "lines": [{"sku": "EGGS", "quantity": 2}], "assembly": "paris-11"}
        return self.http.post("/orders", json=body | {"collection": collection}, headers={"Idempotency-Key": order_id})


@pytest.fixture
def api(tmp_path: Path, clock: FakeClock, store_url: str) -> Iterator[Api]:
    """acme with 30 EGGS on Monday 7 December 2026, served for real."""
    clock.set("2026-12-07T09:00:00+01:00")
    app = bootstrap.build(settings.load(write_api_config(tmp_path, store_url=store_url), environ={}), clock=clock)
    try:
        app.commands.set_stock("acme", "EGGS", 30, None)
        with serving(app, Tokens.from_settings(app.settings, environ=ENV)) as live:
            found = Api(live.base)
            yield found
            found.http.close()
    finally:
        app.close()


def test_put_collections_sets_the_dates_and_get_collections_reads_them(api: Api) -> None:
    """The eggs for Friday: orders until Wednesday 18:00 Paris time; the answer says the collection is open now."""
    answer = api.put(collection="2026-12-11", closes_at="2026-12-09T18:00:00", pickup_on="2026-12-11")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "assembly": "paris-11",
        "collection": "2026-12-11",
        "opens_at": None,
        "closes_at": "2026-12-09T17:00:00Z",
        "pickup_on": "2026-12-11",
        "open_now": True,
        "partner": "acme",
        "had_dates": False,
    }
    listed: list[dict[str, Any]] = api.http.get("/collections", params={"assembly": "paris-11"}).json()
    assert listed == [{k: v for k, v in answer.json().items() if k not in ("partner", "had_dates")}]
    assert api.http.get("/collections", params={"assembly": "lyon-3"}).json() == []


def test_post_orders_in_a_closed_collection_is_409_collection_closed(api: Api) -> None:
    """Last week's collection closed on Wednesday 2 December: 409 with the code; Friday's takes the order (201)."""
    assert api.put(collection="2026-12-04", closes_at="2026-12-02T18:00:00+01:00").status_code == 200
    assert api.put(collection="2026-12-11", closes_at="2026-12-09T18:00:00").status_code == 200
    problem(api.order("O-late", "2026-12-04"), 409, "collection_closed", "collection 2026-12-04", "it closed at")
    assert api.order("O-fri", "2026-12-11").status_code == 201
    assert api.http.get("/orders/O-late").status_code == 404


def test_put_collections_refuses_an_empty_window_and_a_bad_date(api: Api) -> None:
    """closes_at not after opens_at: 409 collection_window_empty; a pickup_on that is no date, or a bad instant: 422."""
    empty = api.put(collection="C", opens_at="2026-12-09T18:00:00", closes_at="2026-12-09T17:00:00")
    problem(empty, 409, "collection_window_empty", "is not after opens_at")
    problem(api.put(collection="C", pickup_on="Friday"), 422, "malformed", "pickup_on")
    problem(api.put(collection="C", opens_at="soon"), 422, "malformed", "opens_at")
    assert api.http.get("/collections").json() == []
