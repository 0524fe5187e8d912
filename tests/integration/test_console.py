"""The operator console (issue 17, part 3) in process, on a real SQLite store seeded by real deliveries to the fake
partner: who gets in (login redirect, the console scope, a bearer header, the session cookie), what each page shows,
the CSRF check on the retry, escaping, and reads that never take the writer. The store's new reads (search, hourly
counts) run on both stores. The pages in a real browser: tests/e2e/test_console_browser.py."""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi import FastAPI

from gateway import bootstrap, platform_api, settings
from gateway.access import Tokens
from gateway.domain.messages import MessageKind, OutboxState
from gateway.formats.rows import Kind
from gateway.platform_api.console.session import COOKIE, LIFETIME, Sessions
from tests.conftest import AppFactory, FakeClock
from tests.support.console import (
    API_TOKEN,
    APPLIED_RUN,
    CONSOLE_TOKEN,
    ENV,
    HOSTILE,
    PARTNER,
    Seeded,
    seed,
    worker_config,
)
from tests.support.partner import running

with warnings.catch_warnings():  # starlette's TestClient names anyio.abc.BlockingPortal, an alias anyio deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

BEARER = {"Authorization": f"Bearer {CONSOLE_TOKEN}"}
PAGES = ("/console/", f"/console/partners/{PARTNER}/items", f"/console/partners/{PARTNER}/outbox")


@pytest.fixture(scope="module")
def seeded_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    """One seeded store for the tests that only read it."""
    folder = tmp_path_factory.mktemp("console")
    with running(token="partner-s3cret") as partner:  # noqa: S106 - the fake partner's token
        return folder, seed(folder, partner)


def console_app(folder: Path, seeded: Seeded) -> tuple[bootstrap.App, FastAPI]:
    app = bootstrap.build(settings.load(worker_config(folder, seeded), environ=ENV))
    return app, platform_api.create_app(app, Tokens.from_settings(app.settings, environ=ENV))


@pytest.fixture
def client(seeded_folder: tuple[Path, Seeded]) -> Iterator[TestClient]:
    app, api = console_app(*seeded_folder)
    with TestClient(api, base_url="http://127.0.0.1") as found:
        yield found
    app.close()


@pytest.fixture
def own(tmp_path: Path) -> Iterator[tuple[bootstrap.App, TestClient, Seeded]]:
    """A store of the test's own (for tests that change it), its app and a client."""
    with running(token="partner-s3cret") as partner:  # noqa: S106 - the fake partner's token
        seeded = seed(tmp_path, partner)
    app, api = console_app(tmp_path, seeded)
    with TestClient(api, base_url="http://127.0.0.1") as found:
        yield app, found, seeded
    app.close()


def log_in(client: TestClient, token: str = CONSOLE_TOKEN, target: str = "/console/") -> str:
    """Log in through the form; the CSRF token of the session (read from a page's hidden field)."""
    answer = client.post("/console/login", data={"token": token, "next": target}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    page = client.get(f"/console/partners/{PARTNER}/outbox")
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert found is not None, page.text
    return found.group(1)


def dead_state(app: bootstrap.App, message_id: int) -> OutboxState:
    with app.store.read() as tx:
        [row] = [r for r in tx.outbox.rows(tx.partners.id_of(PARTNER), state=None) if r.id == message_id]
    return row.state


def test_a_page_without_credentials_redirects_to_the_login_form_and_back(client: TestClient) -> None:
    """No header and no cookie: 303 to /console/login naming the page asked for, and the form is served."""
    for path in PAGES:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, (path, answer.status_code)
        assert answer.headers["location"].startswith("/console/login?next=%2Fconsole%2F")
    form = client.get("/console/login?next=/console/partners/shop/items")
    assert form.status_code == 200
    assert 'name="token"' in form.text
    assert 'value="/console/partners/shop/items"' in form.text


def test_a_token_without_the_console_scope_is_refused_403_as_a_header_and_at_login(client: TestClient) -> None:
    """An API-only token: 403 on every page by bearer header, and 403 at the login form, with no cookie set."""
    for path in PAGES:
        answer = client.get(path, headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert answer.status_code == 403, (path, answer.status_code)
        assert "no console scope" in answer.text
    login = client.post("/console/login", data={"token": API_TOKEN}, follow_redirects=False)
    assert login.status_code == 403
    assert COOKIE not in login.headers.get("set-cookie", "")
    wrong = client.post("/console/login", data={"token": "not-a-token-at-all-0000"}, follow_redirects=False)
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    assert client.get("/console/", headers={"Authorization": "Bearer nope-nope-nope-nope"}).status_code == 401


def test_a_console_only_token_is_refused_by_the_partner_api(client: TestClient) -> None:
    """Scopes cut both ways: the console token gets 403 on /v1, the API token 200."""
    assert client.get(f"/v1/partners/{PARTNER}/ats", headers=BEARER).status_code == 403
    assert (
        client.get(f"/v1/partners/{PARTNER}/ats", headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 200
    )


def test_a_bearer_token_with_the_console_scope_sees_every_page_with_the_stores_values(
    client: TestClient, seeded_folder: tuple[Path, Seeded]
) -> None:
    """The overview (sources, last hour, outbox, chart), items, outbox with the dead letter's status and answer, and
    a SKU's ATS explained, by bearer header; with the console's strict headers."""
    seeded = seeded_folder[1]
    overview = client.get("/console/", headers=BEARER)
    assert overview.status_code == 200
    assert "default-src 'none'" in overview.headers["content-security-policy"]
    assert overview.headers["cache-control"] == "no-store"
    assert ">drop<" in overview.text
    assert "not polled by this process" in overview.text
    assert "Dead letters: <strong" in overview.text
    assert ">1</strong>" in overview.text
    assert "2 item(s) and 2 delivery(ies) in the last 24 hours" in overview.text  # the chart's title
    assert overview.text.count('<rect class="items"') == 24
    items = client.get(f"/console/partners/{PARTNER}/items", headers=BEARER).text
    assert "levels-good.csv" in items
    assert ">applied<" in items
    assert ">rejected<" in items
    assert seeded.applied_sha256[:12] in items
    assert "&#34;problems&#34;" in items
    outbox = client.get(f"/console/partners/{PARTNER}/outbox", headers=BEARER).text
    row = outbox.split(f'id="dead-{seeded.dead_id}"', 1)[1].split("</tr>", 1)[0]
    assert ">DEAD-1<" in row
    assert '<td class="status">400</td>' in row
    assert "unknown sku DEAD-1" in row
    assert f'id="retry-{seeded.dead_id}"' in row
    assert 'name="csrf"' not in row
    assert re.search(r"<td>ats</td><td>delivered</td><td class=\"num\">2</td>", outbox)
    ats = client.get(f"/console/partners/{PARTNER}/ats", params={"sku": "EGGS"}, headers=BEARER).text
    assert '<td class="num" id="stock">12</td>' in ats
    assert '<td class="num" id="ats">12</td>' in ats
    assert "ledger entry" in ats


def test_items_are_found_by_file_name_sha256_or_run_id_and_wildcards_are_literal(
    client: TestClient, seeded_folder: tuple[Path, Seeded]
) -> None:
    """A part of the file name, the whole sha256 and the run_id of the values an item queued each find it; % finds
    nothing (no file name holds it)."""
    seeded = seeded_folder[1]

    def found(q: str) -> list[str]:
        text = client.get(f"/console/partners/{PARTNER}/items", params={"q": q}, headers=BEARER).text
        return re.findall(r'<td class="file">([^<]*)</td>', text)

    assert found("GOOD") == ["levels-good.csv"]
    assert found(seeded.applied_sha256) == ["levels-good.csv"]
    assert found(APPLIED_RUN) == ["levels-good.csv"]
    assert len(found(seeded.rejected_sha256)) == 1
    assert found("%") == []
    assert len(found("levels")) == 2


def test_a_hostile_file_name_is_shown_as_text_on_the_items_page(client: TestClient) -> None:
    """A file named with markup is escaped wherever it is shown: no tag of it reaches the page."""
    page = client.get(f"/console/partners/{PARTNER}/items", headers=BEARER).text
    assert HOSTILE not in page
    assert "<img" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;levels.csv" in page


def test_logging_in_sets_an_httponly_strict_cookie_holding_no_token(client: TestClient) -> None:
    """The form's answer: 303 back, a cookie HttpOnly, SameSite=Strict, for /console/ only, without the token in it;
    the cookie then opens the pages and logging out drops it."""
    answer = client.post(
        "/console/login", data={"token": CONSOLE_TOKEN, "next": "/console/partners/shop/items"}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/partners/shop/items"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console/" in cookie
    assert f"Max-Age={LIFETIME}" in cookie
    assert CONSOLE_TOKEN not in cookie
    assert client.get("/console/").status_code == 200
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', client.get("/console/").text)
    assert csrf is not None
    out = client.post("/console/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_a_login_goes_back_to_a_console_page_only(client: TestClient) -> None:
    """`next` outside the console (another site, another path) sends the operator to the overview instead."""
    for target in ("https://evil.example/", "//evil.example/console/", "/v1/partners/shop/ats"):
        answer = client.post("/console/login", data={"token": CONSOLE_TOKEN, "next": target}, follow_redirects=False)
        assert answer.headers["location"] == "/console/", target


def test_a_forged_tampered_or_expired_session_cookie_is_no_session(tmp_path: Path) -> None:
    """A cookie is taken only as issued, unexpired, by the same key, for a token that is still the same."""
    grant_tokens = Tokens.from_settings(
        settings.load(worker_config(tmp_path, Seeded("sqlite:///x.db", "", "", 0, tmp_path)), environ=ENV), ENV
    )
    sessions = Sessions(grant_tokens, key=b"k" * 32)
    operator = grant_tokens.named("operator")
    assert operator is not None
    value = sessions.issue(operator, now=1000.0)
    assert sessions.check(value, now=1001.0) == operator
    assert sessions.check(value, now=1000.0 + LIFETIME + 1) is None
    assert sessions.check(value[:-1] + ("0" if value[-1] != "0" else "1"), now=1001.0) is None
    assert Sessions(grant_tokens, key=b"x" * 32).check(value, now=1001.0) is None
    expires, name, mac = value.split(".")
    assert sessions.check(f"{int(expires) + 3600}.{name}.{mac}", now=1001.0) is None
    checkout = grant_tokens.named("checkout")
    assert checkout is not None
    assert sessions.check(value.replace(name, sessions.issue(checkout, now=1000.0).split(".")[1]), now=1001.0) is None


def test_a_retry_without_the_sessions_csrf_token_is_refused_and_with_it_queues_the_letter_again(
    own: tuple[bootstrap.App, TestClient, Seeded],
) -> None:
    """The retry button's POST from a session: 403 without the CSRF field or with another one (the letter stays
    dead); with it, 303 to the outbox page saying so, and the message is pending again in the store."""
    app, client, seeded = own
    csrf = log_in(client)
    url = f"/console/partners/{PARTNER}/dead-letters/{seeded.dead_id}/retry"
    assert client.post(url, data={}, follow_redirects=False).status_code == 403
    assert client.post(url, data={"csrf": "0" * 64}, follow_redirects=False).status_code == 403
    assert dead_state(app, seeded.dead_id) == OutboxState.DEAD
    answer = client.post(url, data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/partners/{PARTNER}/outbox?revived=1&left_dead=0"
    assert dead_state(app, seeded.dead_id) == OutboxState.PENDING
    page = client.get(answer.headers["location"]).text
    assert "Queued again: 1" in page
    assert 'id="no-dead-letters"' in page


def test_a_retry_by_bearer_header_needs_no_csrf_field_and_an_unknown_id_queues_nothing(
    own: tuple[bootstrap.App, TestClient, Seeded],
) -> None:
    """A script's POST with the console token as a bearer header (a browser never sends one by itself) revives the
    letter without a CSRF field; an id that is no dead letter of the partner revives nothing."""
    app, client, seeded = own
    nothing = client.post(f"/console/partners/{PARTNER}/dead-letters/999999/retry", headers=BEARER)
    assert "Queued again: 0." in nothing.text
    assert dead_state(app, seeded.dead_id) == OutboxState.DEAD
    url = f"/console/partners/{PARTNER}/dead-letters/{seeded.dead_id}/retry"
    answer = client.post(url, headers=BEARER, follow_redirects=False)
    assert answer.status_code == 303
    assert dead_state(app, seeded.dead_id) == OutboxState.PENDING
    api_only = client.post(url, headers={"Authorization": f"Bearer {API_TOKEN}"}, follow_redirects=False)
    assert api_only.status_code == 403


def test_the_read_only_pages_answer_while_another_transaction_holds_the_writer(
    own: tuple[bootstrap.App, TestClient, Seeded],
) -> None:
    """Every page but the retry reads: with SQLite's writer held by an open write transaction, each still answers."""
    app, client, _seeded = own
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with app.store.write():
            holding.set()
            release.wait(30)

    with ThreadPoolExecutor(max_workers=2) as pool:
        held = pool.submit(hold)
        assert holding.wait(10)
        try:
            for path in (*PAGES, f"/console/partners/{PARTNER}/ats?sku=EGGS", f"/console/partners/{PARTNER}/items?q=x"):
                answer = pool.submit(client.get, path, headers=BEARER).result(timeout=10)
                assert answer.status_code == 200, path
        finally:
            release.set()
        held.result(timeout=10)


@pytest.mark.both_stores
def test_the_ledger_search_and_hourly_counts_read_the_same_on_both_stores(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path
) -> None:
    """find: a file name part (case aside; % and _ literal), a digest, a run; hourly: items and deliveries per hour
    counted from a given instant."""
    app = make_app(acme={"stock_mode": "simple"})
    names = ["a_b.csv", "axb.csv", "100%.csv"]
    found = {}
    for number, name in enumerate(names):
        path = tmp_path / f"f{number}.csv"
        path.write_text(f"sku,quantity,as_of\nS{number},1,2026-01-01T00:00:00Z\n")
        clock.advance(3600)
        found[name] = app.ingestor.ingest("acme", Kind.STOCK, path, source=name, run_id=f"run-{number}")
    # a rejected item queues nothing: its entry keeps the run_id itself (0012)
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,quantity,as_of\nS9,-1,2026-01-01T00:00:00Z\n")
    assert app.ingestor.ingest("acme", Kind.STOCK, bad, source="bad.csv", run_id="run-bad").outcome == "rejected"
    with app.store.read() as tx:
        acme = tx.partners.id_of("acme")

        def sources(text: str) -> list[str]:
            return [entry.source for entry in tx.ledger.find(acme, text)]

        assert sources("_") == ["a_b.csv"]
        assert sources("%") == ["100%.csv"]
        assert sources("AXB") == ["axb.csv"]
        assert sources(found["axb.csv"].sha256) == ["axb.csv"]
        assert sources("run-2") == ["100%.csv"]
        assert sources("run-bad") == ["bad.csv"]
        assert [entry.source for entry in tx.ledger.entries(acme)][1:] == ["100%.csv", "axb.csv", "a_b.csv"]
        first = tx.ledger.entries(acme)[-1].received_at
        assert tx.ledger.hourly(acme, first) == {0: 1, 1: 1, 2: 2}
        assert tx.ledger.hourly(acme, first + 1) == {0: 1, 1: 2}
        assert tx.outbox.delivered_hourly(acme, first) == {}
    clock.advance(3600)
    with app.store.write() as tx:  # the three values delivered in the fourth hour
        claim = tx.outbox.claim(acme, MessageKind.ATS, clock(), 10, clock() + 60_000_000, "batch-1")
        assert claim is not None
        assert tx.outbox.settle_delivered(claim, 200, clock()) == 3
    with app.store.read() as tx:
        assert tx.outbox.delivered_hourly(acme, first) == {3: 3}
