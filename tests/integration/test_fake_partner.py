"""The fake partner API itself, spoken to with plain `requests` over real loopback connections."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.partner import FakePartner, Lost, Reset, Slow, Status

AUTH = {"Authorization": "Bearer partner-token"}
TIMEOUT = (2.0, 2.0)  # connect, read: generous, and never reached unless something is wrong


@pytest.fixture
def partner() -> Iterator[FakePartner]:
    with FakePartner() as running:
        yield running


def ats(sku: str, value: int, computed_at: str, message_id: int = 1) -> dict[str, Any]:
    return {"message_id": message_id, "sku": sku, "ats": value, "as_of": None, "computed_at": computed_at}


def deliver(
    partner: FakePartner,
    items: list[dict[str, Any]],
    key: str,
    path: str = "/ats",
    timeout: tuple[float, float] = TIMEOUT,
) -> requests.Response:
    return requests.post(
        partner.url + path, json={"items": items}, headers={**AUTH, "Idempotency-Key": key}, timeout=timeout
    )


def page(partner: FakePartner, feed: str, **query: str | int) -> requests.Response:
    return requests.get(f"{partner.url}/{feed}", params=query, headers=AUTH, timeout=TIMEOUT)


def test_requests_without_the_token_are_refused_and_recorded(partner: FakePartner) -> None:
    missing = requests.get(partner.url + "/stock", timeout=TIMEOUT)
    wrong = requests.post(
        partner.url + "/ats",
        json={"items": [ats("A1", 1, "2026-11-23T10:00:00.000000Z")]},
        headers={"Authorization": "Bearer nope", "Idempotency-Key": "k"},
        timeout=TIMEOUT,
    )

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json() == {"error": "unauthorized"}
    assert [(r.method, r.outcome, r.status) for r in partner.requests] == [
        ("GET", "unauthorized", 401),
        ("POST", "unauthorized", 401),
    ]
    assert partner.batches == []


def test_basic_authentication_when_configured() -> None:
    with FakePartner(token=None, basic=("gw", "secret")) as partner:
        good = requests.get(partner.url + "/stock", auth=("gw", "secret"), timeout=TIMEOUT)
        bad = requests.get(partner.url + "/stock", auth=("gw", "guess"), timeout=TIMEOUT)
        bearer = requests.get(partner.url + "/stock", headers=AUTH, timeout=TIMEOUT)

    assert (good.status_code, bad.status_code, bearer.status_code) == (200, 401, 401)


def test_a_feed_is_paged_with_cursors(partner: FakePartner) -> None:
    partner.add_items("stock", [{"sku": f"S{n}", "quantity": n, "as_of": "2026-11-23T10:00:00Z"} for n in range(5)])

    first = page(partner, "stock", limit=2).json()
    second = page(partner, "stock", limit=2, cursor=first["next_cursor"]).json()
    last = page(partner, "stock", limit=2, cursor=second["next_cursor"]).json()
    partner.add_items("stock", [{"sku": "S5", "quantity": 5, "as_of": "2026-11-23T11:00:00Z"}])
    later = page(partner, "stock", cursor=last["next_cursor"]).json()

    assert [item["sku"] for item in first["items"]] == ["S0", "S1"]
    assert (first["next_cursor"], first["has_more"]) == ("2", True)
    assert [item["sku"] for item in second["items"]] == ["S2", "S3"]
    assert ([item["sku"] for item in last["items"]], last["next_cursor"], last["has_more"]) == (["S4"], "5", False)
    assert (later["items"][0]["sku"], later["next_cursor"], later["has_more"]) == ("S5", "6", False)
    assert page(partner, "acknowledgements").json() == {"items": [], "next_cursor": "0", "has_more": False}
    assert page(partner, "stock", cursor="99").status_code == 400
    assert [r.query for r in partner.requests[:2]] == [{"limit": "2"}, {"limit": "2", "cursor": "2"}]


def test_a_broken_page_serves_its_raw_body_until_mended(partner: FakePartner) -> None:
    partner.add_items("acknowledgements", [{"order_id": "O1", "status": "closed"}])
    partner.break_page("acknowledgements", None, b'{"items": [', status=200)

    broken = page(partner, "acknowledgements")
    other_cursor = page(partner, "acknowledgements", cursor="0")
    partner.mend_page("acknowledgements", None)
    mended = page(partner, "acknowledgements")

    assert (broken.status_code, broken.content) == (200, b'{"items": [')
    assert broken.headers["Content-Type"] == "application/json"
    assert other_cursor.json()["items"] == [{"order_id": "O1", "status": "closed"}]
    assert mended.json()["items"] == [{"order_id": "O1", "status": "closed"}]
    assert [r.outcome for r in partner.requests] == ["broken page", "page", "page"]


def test_a_key_already_applied_is_answered_again_without_applying(partner: FakePartner) -> None:
    batch = [ats("A1", 4, "2026-11-23T10:00:00.000000Z")]

    first = deliver(partner, batch, "key-1")
    again = deliver(partner, batch, "key-1")
    other = deliver(partner, batch, "key-2")

    assert [first.status_code, again.status_code, other.status_code] == [200, 200, 200]
    assert again.json() == {"accepted": 1, "replay": True}
    assert partner.replays == ["key-1"]
    assert [(kind, key) for kind, key, _ in partner.batches] == [("ats", "key-1"), ("ats", "key-2")]
    assert partner.arrivals("ats") == Counter({"A1": 2})
    assert [r.idempotency_key for r in partner.requests] == ["key-1", "key-1", "key-2"]
    assert partner.requests[0].json() == {"items": batch}


def test_scripted_statuses_answer_in_order_without_applying(partner: FakePartner) -> None:
    partner.script(Status(429, headers={"Retry-After": "2"}), Status(400, body="bad sku"))
    batch = [ats("A1", 4, "2026-11-23T10:00:00.000000Z")]

    throttled = deliver(partner, batch, "k")
    refused = deliver(partner, batch, "k")
    accepted = deliver(partner, batch, "k")

    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2")
    assert (refused.status_code, refused.text) == (400, "bad sku")
    assert accepted.json() == {"accepted": 1, "replay": False}
    assert [r.outcome for r in partner.requests] == ["status 429", "status 400", "applied"]
    assert partner.pending == []


def test_a_2xx_status_still_applies_the_batch(partner: FakePartner) -> None:
    partner.script(Status(204, body=""))

    answer = deliver(partner, [ats("A1", 4, "2026-11-23T10:00:00.000000Z")], "k")

    assert answer.status_code == 204
    assert partner.ats_view() == {"A1": 4}


def test_a_reset_reaches_the_client_and_applies_nothing(partner: FakePartner) -> None:
    partner.script(Reset())

    with pytest.raises(requests.exceptions.ConnectionError, match="reset"):
        deliver(partner, [ats("A1", 4, "2026-11-23T10:00:00.000000Z")], "k")

    assert partner.batches == []
    assert [(r.outcome, r.status) for r in partner.requests] == [("reset", None)]


def test_a_lost_answer_applies_the_batch_but_the_client_sees_a_reset(partner: FakePartner) -> None:
    partner.script(Lost())
    batch = [ats("A1", 4, "2026-11-23T10:00:00.000000Z")]

    with pytest.raises(requests.exceptions.ConnectionError):
        deliver(partner, batch, "k")
    retried = deliver(partner, batch, "k")

    assert partner.ats_view() == {"A1": 4}
    assert retried.json()["replay"] is True
    assert partner.replays == ["k"]
    assert [r.outcome for r in partner.requests] == ["lost applied", "replay"]


def test_scripts_for_feeds_are_taken_by_feed_requests(partner: FakePartner) -> None:
    partner.script(Status(503), Reset(), for_feeds=True)

    unavailable = page(partner, "stock")
    with pytest.raises(requests.exceptions.ConnectionError):
        page(partner, "stock")
    served = page(partner, "stock")

    assert (unavailable.status_code, served.status_code) == (503, 200)


def test_a_slow_answer_outlasts_the_read_timeout_and_stop_does_not_wait_for_it() -> None:
    partner = FakePartner().start()
    try:
        partner.script(Slow(2))
        with pytest.raises(requests.exceptions.ReadTimeout):
            deliver(partner, [ats("A1", 4, "2026-11-23T10:00:00.000000Z")], "k", timeout=(2.0, 0.3))
        started = time.monotonic()
        partner.stop()
        stopped_in = time.monotonic() - started
        partner.wait_for(lambda p: p.requests[-1].status == 503, timeout=2)  # the sleeper was woken by stop()
    finally:
        partner.stop()

    assert stopped_in < 0.5
    assert partner.batches == []
    assert partner.requests[0].outcome == "slow"


def test_the_views_keep_the_latest_computed_at(partner: FakePartner) -> None:
    deliver(
        partner,
        [ats("A1", 5, "2026-11-23T10:00:02.000000Z"), ats("B1", 1, "2026-11-23T10:00:00.000000Z")],
        "k1",
    )
    deliver(
        partner,
        [ats("A1", 9, "2026-11-23T10:00:01.000000Z"), ats("B1", 2, "2026-11-23T10:00:00+00:00")],  # older; a tie
        "k2",
    )
    channel = {"message_id": 3, "sku": "A1", "assembly": "web", "collection": "*", "cap": None, "ordered": 0}
    deliver(partner, [{**channel, "ats": 7, "computed_at": "2026-11-23T10:00:05.000000Z"}], "k3", "/channel-ats")
    deliver(partner, [{**channel, "ats": 6, "computed_at": "2026-11-23T10:00:04.000000Z"}], "k4", "/channel-ats")

    assert partner.ats_view() == {"A1": 5, "B1": 2}
    assert partner.channel_view() == {("A1", "web", "*"): 7}
    assert [item["ats"] for item in partner.items("ats")] == [5, 1, 9, 2]


def test_order_deliveries_are_counted_by_order(partner: FakePartner) -> None:
    line = {"sku": "A1", "quantity": 2, "confirmed_quantity": None, "assembly": "web", "collection": "*"}
    order = {"message_id": 1, "order_id": "O1", "status": "closed", "updated_at": "2026-11-23T10:00:00.000000Z"}

    deliver(partner, [{**order, "lines": [line]}], "k1", "/orders/closed")
    deliver(partner, [{**order, "message_id": 2, "lines": [line]}], "k2", "/orders/closed")
    deliver(partner, [{**order, "lines": []}], "k3", "/order-exports")

    assert partner.arrivals("order_closed") == Counter({"O1": 2})
    assert partner.arrivals("order_export") == Counter({"O1": 1})


def test_a_body_breaking_the_contract_is_refused(partner: FakePartner) -> None:
    no_key = requests.post(partner.url + "/ats", json={"items": []}, headers=AUTH, timeout=TIMEOUT)
    no_field = deliver(partner, [{"message_id": 1, "sku": "A1", "ats": 1}], "k")
    naive = deliver(partner, [ats("A1", 1, "2026-11-23T10:00:00")], "k")

    assert [no_key.status_code, no_field.status_code, naive.status_code] == [400, 400, 400]
    assert no_field.json() == {"error": "item 0 lacks 'as_of'"}
    assert partner.batches == []


def test_chaos_is_seeded_and_calm_ends_it() -> None:
    def run(seed: int) -> list[str]:
        with FakePartner() as chaotic:
            chaotic.chaos(0.5, seed=seed)
            for number in range(12):
                with contextlib.suppress(requests.exceptions.ConnectionError):
                    deliver(chaotic, [ats("A1", number, "2026-11-23T10:00:00.000000Z")], f"k{number}")
            chaotic.calm()
            deliver(chaotic, [ats("A1", 99, "2026-11-23T10:00:01.000000Z")], "calm")
            return [r.outcome for r in chaotic.requests]

    outcomes = run(7)

    assert outcomes == run(7)
    assert outcomes[-1] == "applied"
    assert {"applied"} < set(outcomes) <= {"applied", "status 500", "status 429", "reset", "lost applied"}


def test_wait_for_returns_on_a_request_and_says_what_it_saw_at_the_deadline(partner: FakePartner) -> None:
    deliver(partner, [ats("A1", 4, "2026-11-23T10:00:00.000000Z")], "k")
    partner.wait_for(lambda p: p.ats_view() == {"A1": 4}, timeout=1)

    with pytest.raises(AssertionError, match=r"(?s)1 requests .* POST /v1/ats -> applied \(200\)"):
        partner.wait_for(lambda p: len(p.batches) == 2, timeout=0.05)
