"""The platform API against its OpenAPI document.

The document the app serves at /openapi.json is committed as docs/platform-api.json, and a test fails when the two
differ. Regenerate the file after changing the API with:

    python tests/integration/test_platform_openapi.py --write

schemathesis then drives the live app (uvicorn for real on 127.0.0.1, over a real SQLite store holding three
partners, stock, caps and orders) with a few hundred requests generated from that document across every operation,
steered part of the time towards partners, SKUs, orders and timestamps the store knows so that the requests get past
the first refusal; then it reads back every partner's ATS and each SKU explained. Every response must be documented
(status code and content type) and match its schema, and none may be a 5xx. Hypothesis runs derandomized and without
its example database, so every run sends the same requests.
"""

from __future__ import annotations

import difflib
import itertools
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import utils as conjecture_utils
from schemathesis import experimental
from schemathesis.exceptions import CheckFailed

from gateway import bootstrap, platform_api
from gateway import settings as gateway_settings
from gateway.access import Tokens
from gateway.domain import instant
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "platform-api.json"
REGENERATE = "python tests/integration/test_platform_openapi.py --write"

TOKEN_ENV = "PLATFORM_OPENAPI_TEST_TOKEN"  # noqa: S105 - the name of a variable, not a secret
TOKEN = "platform-openapi-test-token-0123456789"  # noqa: S105 - a token of the throwaway test store
PARTNERS = ("simple-shop", "advanced-brand", "timed-farm")
# "BOX/12" and the accented name are SKUs as partners write them: a slash and non-ASCII letters
SKUS = ("SKU-1", "SKU-2", "SKU-3", "BOX/12", "crème brûlée")
ASSEMBLY, COLLECTION = "spring", "week-1"
DATED = "week-2"  # the collection PUT collections is steered to
EXAMPLES = 660  # requests generated across the thirteen operations (about 50 each), each one sent to the live app
NOW = "2026-03-01T12:00:00+00:00"

# Moments the API must take: ordinary ones, with or without an offset (without: the partner's zone), anywhere in the
# range a datetime holds, and its very edges with the extreme offsets: an instant the API accepts must stay readable.
_OFFSETS = [timezone(timedelta(hours=h)) for h in (-14, -5, 0, 1, 14)]
_EDGES = [
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=zone) if late else datetime(1, 1, 1, tzinfo=zone)
    for late in (True, False)
    for zone in (_OFFSETS[0], _OFFSETS[-1], None)
]
MOMENTS = st.one_of(
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=st.none() | st.sampled_from(_OFFSETS)),
    st.sampled_from(_EDGES),
    st.datetimes(timezones=st.none() | st.sampled_from(_OFFSETS)),
).map(datetime.isoformat)


def render(document: dict[str, Any]) -> str:
    """The committed form of the OpenAPI document."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_config(folder: Path) -> Path:
    """A configuration with the three stock modes (the time-based partner in its own zone) and one token for all."""
    path = folder / "gateway.toml"
    path.write_text(
        f'staging = "staging"\n\n[store]\nurl = "sqlite:///{folder / "gateway.db"}"\n\n'
        f'[[api.tokens]]\nname = "platform"\ntoken_env = "{TOKEN_ENV}"\npartners = ["*"]\n\n'
        '[partners.simple-shop]\nstock_mode = "simple"\n\n'
        '[partners.advanced-brand]\nstock_mode = "advanced"\n\n'
        '[partners.timed-farm]\nstock_mode = "time_based"\ntimezone = "Europe/Paris"\n',
        encoding="utf-8",
    )
    return path


def build(folder: Path) -> tuple[bootstrap.App, Tokens]:
    """The gateway on a fresh SQLite store in `folder` (its clock stands still at NOW), and its tokens."""
    config = gateway_settings.load(write_config(folder), environ={})
    moment = instant.parse(NOW)
    app = bootstrap.build(config, clock=lambda: moment)
    return app, Tokens.from_settings(config, environ={TOKEN_ENV: TOKEN})


@dataclass(frozen=True)
class SeedOrder:
    order_id: str
    sku: str
    status: OrderStatus
    in_channel: bool = False


SEED_ORDERS = (
    SeedOrder("ORDER-1", "SKU-1", OrderStatus.PENDING, in_channel=True),
    SeedOrder("ORDER-2", "SKU-2", OrderStatus.CONFIRMED),
    SeedOrder("ORDER-3", "SKU-3", OrderStatus.CLOSED),
    SeedOrder("ORDER-4", "BOX/12", OrderStatus.CANCELLED),
    SeedOrder("ORDER-5", "crème brûlée", OrderStatus.INVOICING),
)


def seed(app: bootstrap.App) -> None:
    """Stock for every SKU, a collection cap and an assembly default, and an order in each status, per partner."""
    for partner in PARTNERS:
        for sku in SKUS:
            app.commands.set_stock(partner, sku, 1_000, instant.parse("2026-02-01T00:00:00Z"))
        app.commands.set_cap(partner, "SKU-1", ASSEMBLY, COLLECTION, 5)
        app.commands.set_cap(partner, "SKU-2", ASSEMBLY, None, 10)
        for order in SEED_ORDERS:
            channel = (ASSEMBLY, COLLECTION) if order.in_channel else (None, None)
            app.commands.place(partner, order.order_id, [RequestedLine(order.sku, 2, *channel)])
            if order.status != OrderStatus.PENDING:
                app.commands.set_status(partner, order.order_id, order.status)


@contextmanager
def serving(app: bootstrap.App, tokens: Tokens) -> Iterator[str]:
    """The API served for real by uvicorn on 127.0.0.1 (a free port) in a thread; its base URL."""
    server = platform_api.server(app, tokens, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, name="platform-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of the live API over a seeded store."""
    app, tokens = build(tmp_path_factory.mktemp("platform-openapi"))
    try:
        seed(app)
        with serving(app, tokens) as url:
            yield url
    finally:
        app.close()


def test_the_committed_document_is_the_one_the_app_serves(live: str) -> None:
    served = requests.get(f"{live}/openapi.json", timeout=10)
    assert served.status_code == 200
    expected = render(served.json())
    committed = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""
    if committed != expected:
        diff = difflib.unified_diff(
            committed.splitlines(), expected.splitlines(), "docs/platform-api.json", "/openapi.json", lineterm=""
        )
        shown = "\n".join(itertools.islice(diff, 60))
        pytest.fail(
            f"docs/platform-api.json differs from the OpenAPI document the app serves at /openapi.json; "
            f"regenerate it with `{REGENERATE}` and commit it.\n{shown}"
        )


def pick(data: st.DataObject, options: list[Any]) -> Any:
    """One of `options`, a list that grows as the run goes, by a draw whose range does not depend on it (Hypothesis
    requires the same draws for the same choices, whatever the store holds by then)."""
    return options[data.draw(st.integers(0, 255)) % len(options)]


@dataclass
class Steering:
    """What the generated requests are steered towards: the store's partners, SKUs and orders, fresh keys."""

    keys: Iterator[int] = field(default_factory=itertools.count)
    used_keys: list[str] = field(default_factory=list)
    placed: list[tuple[str, str]] = field(default_factory=list)  # (order id, a SKU of it) placed by the run

    def partner(self, data: st.DataObject, generated: str) -> str:
        """A configured partner, now and then the generated name (an unknown partner: 404)."""
        return data.draw(st.sampled_from([*PARTNERS, *PARTNERS, generated]))

    def key(self, data: st.DataObject) -> str:
        """A fresh Idempotency-Key, now and then one used before (a replay, or a 409 with another body)."""
        fresh = f"key-{next(self.keys)}"
        if data.draw(st.integers(0, 4)) == 4 and self.used_keys:
            return pick(data, self.used_keys[-5:])
        self.used_keys.append(fresh)
        return fresh

    def order(self, data: st.DataObject, generated: str) -> tuple[str, str | None]:
        """An order the store holds and one of its SKUs, now and then the generated id (an unknown order: 404)."""
        if data.draw(st.integers(0, 5)) == 5:
            return generated, None
        return pick(data, [(o.order_id, o.sku) for o in SEED_ORDERS] + self.placed[-10:])

    def sku(self, data: st.DataObject, generated: str) -> str:
        return data.draw(st.sampled_from([*SKUS, generated]))

    def apply(self, case: schemathesis.Case, data: st.DataObject) -> None:  # noqa: PLR0912 - one branch per operation's inputs
        """Point the case at what the store holds (part of the time) and authorize it."""
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        case.headers = {**headers, "Authorization": f"Bearer {TOKEN}"}  # one header: a check may replace it
        path = case.path_parameters if case.path_parameters is not None else {}
        body = case.body if isinstance(case.body, dict) else None
        path["partner"] = self.partner(data, path["partner"])
        name = case.operation.path.rsplit("/", 1)[-1]
        if "idempotency-key" in case.headers:
            case.headers["idempotency-key"] = self.key(data)
        if "order_id" in path:
            order_id, order_sku = self.order(data, path["order_id"])
            path["order_id"] = quote(order_id, safe="") if order_sku is not None else order_id
            if body is not None and "sku" in body and order_sku is not None and data.draw(st.booleans()):
                body["sku"] = order_sku
        if "sku" in path:  # schemathesis percent-encodes the values it generates; the steered ones need it too
            sku = self.sku(data, path["sku"])
            path["sku"] = quote(sku, safe="") if sku in SKUS else sku
        if body is not None:
            if name == "orders":
                if data.draw(st.booleans()):
                    body["order_id"] = f"RUN-{next(self.keys)}"
                for line in body["lines"]:
                    line["sku"] = self.sku(data, line["sku"])
                    line["quantity"] = min(line["quantity"], data.draw(st.sampled_from([1, 2, 3, line["quantity"]])))
                if data.draw(st.booleans()):
                    body["assembly"], body["collection"] = ASSEMBLY, COLLECTION
            elif name == "caps":
                body["sku"] = self.sku(data, body["sku"])
                body["assembly"] = data.draw(st.sampled_from([ASSEMBLY, body["assembly"]]))
                body["collection"] = data.draw(st.sampled_from([COLLECTION, "*", body["collection"]]))
            elif name == "collections":
                # another collection than the orders are steered to: a window closed by the run would refuse them
                body["assembly"] = data.draw(st.sampled_from([ASSEMBLY, body["assembly"]]))
                body["collection"] = data.draw(st.sampled_from([DATED, body["collection"]]))
                for key in ("opens_at", "closes_at"):
                    body[key] = data.draw(st.one_of(MOMENTS, st.none(), st.just(body.get(key))))
                body["pickup_on"] = data.draw(st.sampled_from(["2026-12-11", None, body.get("pickup_on")]))
            moment = {"confirmations": "confirmed_at", "{sku}": "as_of"}.get(name)
            if moment is not None:
                body[moment] = data.draw(st.one_of(MOMENTS, st.just(body.get(moment))))
        if name == "caps" and body is None and case.query and data.draw(st.booleans()):  # GET caps, DELETE caps
            query = dict(case.query)
            if "sku" in query:
                query["sku"] = self.sku(data, query["sku"])
            for key, known in (("assembly", ASSEMBLY), ("collection", COLLECTION)):
                if key in query:
                    query[key] = data.draw(st.sampled_from([known, query[key]]))
            case.query = query
        if name == "ats" and data.draw(st.booleans()):
            case.query = {
                **(case.query or {}),
                "sku": data.draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=3)),
            }
            if data.draw(st.booleans()):
                case.query["assembly"], case.query["collection"] = ASSEMBLY, COLLECTION

    def note(self, case: schemathesis.Case, response: requests.Response) -> None:
        """Remember an order the run placed, for later status moves and confirmations."""
        if response.status_code == 201 and isinstance(case.body, dict):
            self.placed.append((case.body["order_id"], case.body["lines"][0]["sku"]))


@dataclass
class Findings:
    """Each distinct failure once (by operation, status and what failed), with how often it was seen."""

    first: dict[tuple[str, int, str], str] = field(default_factory=dict)
    count: dict[tuple[str, int, str], int] = field(default_factory=dict)
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    sent: int = 0

    def check(self, case: schemathesis.Case, response: requests.Response) -> None:
        self.sent += 1
        self.answers[(case.operation.verbose_name, response.status_code)] += 1
        if response.encoding is None:
            # JSON text is UTF-8 (RFC 8259), with no charset; requests knows that of application/json only, and for
            # application/problem+json guesses, which can read a detail quoting CJK characters as GBK (and a
            # backslash escape after one as a broken escape)
            response.encoding = "utf-8"
        try:
            case.validate_response(response)
        except CheckFailed as failed:
            report = str(failed)
            titles = [line.strip() for line in report.splitlines() if line[:1].isdigit() and ". " in line[:4]]
            key = (case.operation.verbose_name, response.status_code, "; ".join(titles) or report.splitlines()[0])
            self.first.setdefault(key, report)
            self.count[key] = self.count.get(key, 0) + 1

    def summary(self) -> str:
        parts = [
            f"--- {operation} -> {status}: {what} ({self.count[(operation, status, what)]}x)\n{report.strip()}"
            for (operation, status, what), report in sorted(self.first.items())
        ]
        answers = ", ".join(f"{operation} {status}: {n}" for (operation, status), n in sorted(self.answers.items()))
        return f"{len(self.first)} distinct failures in {self.sent} requests ({answers}):\n\n" + "\n\n".join(parts)


@pytest.fixture
def openapi_3_1() -> Iterator[None]:
    """schemathesis 3.x validates responses against an OpenAPI 3.1 document (FastAPI's) behind an experiment flag."""
    experimental.OPEN_API_3_1.enable()
    try:
        yield
    finally:
        experimental.OPEN_API_3_1.disable()


@pytest.mark.slow
@pytest.mark.usefixtures("openapi_3_1")
# schemathesis 3.x subclasses jsonschema.RefResolver (deprecated upstream since jsonschema 4.18) when it loads a schema
@pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning")
def test_the_live_app_answers_every_generated_request_as_documented(live: str) -> None:
    if not hasattr(conjecture_utils.many, "more"):
        pytest.fail(
            "this Hypothesis release dropped the internal many.more() that hypothesis-jsonschema 0.23 (which "
            "schemathesis 3.x generates with) calls: pin hypothesis<6.170.10 in pyproject.toml's dev extras"
        )
    schema = schemathesis.from_uri(f"{live}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 13
    steering = Steering()
    findings = Findings()

    @given(case=st.sampled_from(operations).flatmap(lambda operation: operation.as_strategy()), data=st.data())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the store's state moves with every request
        # the generated bodies are large and each example makes a round trip to the live app
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    def one_request(case: schemathesis.Case, data: st.DataObject) -> None:
        steering.apply(case, data)
        response = case.call(timeout=10)
        steering.note(case, response)
        findings.check(case, response)

    one_request()
    # Then what the run left behind must still read as documented: every partner's ATS, each SKU explained.
    read_ats, explain = (next(o for o in operations if o.path.endswith(end)) for end in ("/ats", "/explain"))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for partner in PARTNERS:
        cases = [read_ats.make_case(path_parameters={"partner": partner}, headers=auth, query={})]
        cases += [
            explain.make_case(path_parameters={"partner": partner, "sku": quote(s, safe="")}, headers=auth)
            for s in SKUS
        ]
        for case in cases:
            findings.check(case, case.call(timeout=10))
    assert findings.sent >= EXAMPLES
    assert not findings.first, findings.summary()


def main(arguments: list[str]) -> int:
    """`--write`: write docs/platform-api.json from the app; without it, say whether the committed file is current."""
    with tempfile.TemporaryDirectory(prefix="platform-openapi-") as folder:
        app, tokens = build(Path(folder))
        try:
            document = render(platform_api.create_app(app, tokens).openapi())
        finally:
            app.close()
    if arguments == ["--write"]:
        DOCUMENT.write_text(document, encoding="utf-8")
        print(f"wrote {DOCUMENT.relative_to(ROOT)}")
        return 0
    if arguments:
        print(f"usage: {REGENERATE}", file=sys.stderr)
        return 2
    current = DOCUMENT.exists() and DOCUMENT.read_text(encoding="utf-8") == document
    print("docs/platform-api.json is current" if current else f"docs/platform-api.json is stale: {REGENERATE}")
    return 0 if current else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
