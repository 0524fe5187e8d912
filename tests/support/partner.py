"""A fake partner HTTP API served for real on 127.0.0.1, for integration tests and benchmarks.

    with FakePartner() as partner:                      # or: partner = FakePartner().start() ... partner.stop()
        partner.add_items("stock", [{"sku": "A1", "quantity": 10, "as_of": "2026-11-23T10:00:00Z"}])
        ... point the gateway at partner.url, with the token "partner-token" ...
        partner.script(Status(500), Reset(), Lost())    # the next three deliveries fail so, in this order
        partner.chaos(0.2, seed=7)                      # then about one delivery in five fails at random
        partner.wait_for(lambda p: p.ats_view() == {"A1": 10})

The contract it speaks (JSON everywhere, under `prefix`, "/v1" by default):

- feeds the gateway polls: `GET /stock` and `GET /acknowledgements`, with `limit` (default 100) and `cursor`
  (the offset as text; none is offset 0), answering `{"items": [...], "next_cursor": "N", "has_more": bool}`;
- deliveries: `POST /ats`, `/channel-ats`, `/orders/closed` and `/order-exports` with `{"items": [...]}` and an
  `Idempotency-Key` header. Any 2xx answer means the whole batch was accepted. A batch whose key was already
  applied is answered 200 again without being applied twice (a replay);
- `Authorization: Bearer <token>` (or Basic with `basic`); a wrong or missing one is answered 401.

A partner made with `latency=SECONDS` answers every delivery no sooner than that after it came (as a real API
takes its time), waiting on the same event as `Slow`.

Every request is recorded (`requests`), whatever became of it. Deliveries are checked before anything else
happens to them: a body that is not `{"items": [...]}` with the contract's fields is answered 400 (`invalid: ...`),
so a gateway that breaks the contract is told at once rather than the batch silently counting.

Failures are scripted (`script`) or drawn at random (`chaos`), and are consumed by deliveries only after routing,
authentication and validation; they act before the key is looked at:

- `Status(code, body, headers)` answers exactly that; a 2xx one on a delivery still applies the batch (any 2xx is
  an acceptance), a 2xx one on a feed serves `body` in place of the page;
- `Slow(seconds)` waits that long (or until `stop()`), then answers 200 **without applying anything**: it is meant
  to outlast the client's read timeout; a client patient enough to wait gets a 200 for a batch that was not applied;
  on a feed it serves the page after the delay;
- `Reset()` resets the connection (TCP RST) before applying anything;
- `Lost()` applies the batch (or counts the replay), then resets the connection without answering: "received,
  but the answer was lost". On a feed it is the same as `Reset()`.

Connections are reset for real: the handler sets SO_LINGER (1, 0) on werkzeug's raw connection socket, shuts its
reading side (so werkzeug does not wait for another request on it) and closes it; the descriptor really closes,
with an RST, when werkzeug drops its reader of the socket, before it would shut the writing side (a FIN).
Nothing waits a fixed time: waiting handlers wait on an event that `stop()` sets, and `wait_for` on a condition
notified at every request.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

HOST = "127.0.0.1"
FEEDS = ("stock", "acknowledgements")
# path under the prefix -> the kind of batch it takes
DELIVERIES = {
    "ats": "ats",
    "channel-ats": "channel_ats",
    "orders/closed": "order_closed",
    "order-exports": "order_export",
}
KINDS = tuple(DELIVERIES.values())
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class Status:
    """Answer this status, body and headers (a 2xx one on a delivery still applies the batch)."""

    code: int
    body: str = '{"error": "scripted failure"}'
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Slow:
    """Wait `seconds` (or until the partner stops), then answer 200 without applying anything."""

    seconds: float


@dataclass(frozen=True)
class Reset:
    """Reset the connection before applying anything."""


@dataclass(frozen=True)
class Lost:
    """Apply the batch, then reset the connection without answering (the answer is lost)."""


Behaviour = Status | Slow | Reset | Lost

# what chaos draws from, with the same generator as the draw itself
_CHAOS: tuple[Behaviour, ...] = (Status(500), Status(429, headers={"Retry-After": "0"}), Reset(), Lost())

# the fields each kind of delivered item must carry, and their types
_NONE = type(None)
_ORDER_FIELDS: dict[str, tuple[type, ...]] = {
    "message_id": (int,),
    "order_id": (str,),
    "status": (str,),
    "updated_at": (str,),
    "lines": (list,),
}
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "ats": {"message_id": (int,), "sku": (str,), "ats": (int,), "as_of": (str, _NONE), "computed_at": (str,)},
    "channel_ats": {
        "message_id": (int,),
        "sku": (str,),
        "assembly": (str,),
        "collection": (str,),
        "ats": (int,),
        "cap": (int, _NONE),
        "ordered": (int,),
        "computed_at": (str,),
    },
    "order_closed": _ORDER_FIELDS,
    "order_export": _ORDER_FIELDS,
}
_LINE_FIELDS = ("sku", "quantity", "confirmed_quantity", "assembly", "collection")


@dataclass
class Recorded:
    """One request as the partner received it, and what became of it.

    `outcome` is one of: "unauthorized", "not found", "method not allowed", "invalid: <why>", "page",
    "broken page", "applied", "replay", "status <code>" (with " applied" / " replay" for a 2xx on a delivery),
    "slow", "reset", "lost applied", "lost replay". `status` is the HTTP status answered (None when reset).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    idempotency_key: str | None
    outcome: str = ""
    status: int | None = None

    def json(self) -> Any:
        """The body, parsed as JSON."""
        return json.loads(self.body)

    def __str__(self) -> str:
        answer = "no answer" if self.status is None else str(self.status)
        return f"{self.method} {self.path} -> {self.outcome} ({answer})"


class _Refused(Exception):
    """A request answered at once with an error (and this outcome), before any behaviour applies."""

    def __init__(self, outcome: str, response: Response) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.response = response


class _Hangup(ConnectionError):
    """Raised by the app after resetting the connection; werkzeug takes it for a dropped connection, quietly."""


class _Handler(WSGIRequestHandler):
    """werkzeug's request handler without its access log (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing for a request served."""


def _reset(environ: WSGIEnvironment) -> NoReturn:
    """Reset the client's connection: an RST, no answer."""
    connection: socket.socket = environ["werkzeug.socket"]
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # werkzeug's handler would otherwise wait on this keep-alive connection for a next request: it reads the end
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RD)
    # werkzeug's reader still holds the socket: the descriptor closes (with the RST, SO_LINGER being 0) as soon as
    # the handler closes that reader, which it does before the server shuts the writing side (which would send a FIN)
    connection.close()
    raise _Hangup("connection reset by the fake partner")


def _json(status: int, payload: object, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=dict(headers or {}), mimetype="application/json")


def _scripted(behaviour: Status) -> Response:
    try:
        json.loads(behaviour.body)
    except ValueError:
        mimetype = "text/plain"
    else:
        mimetype = "application/json"
    return Response(behaviour.body, status=behaviour.code, headers=dict(behaviour.headers), mimetype=mimetype)


def _instant(text: str) -> datetime:
    """An ISO-8601 instant with an offset ("Z" included); a naive one is refused."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no offset")
    return moment


def _items(kind: str, mimetype: str, body: bytes) -> list[dict[str, Any]]:
    """The items of a delivery; _Refused (400) when its body breaks the contract."""
    try:
        if mimetype != "application/json":
            raise ValueError(f"Content-Type is {mimetype!r}, not application/json")
        try:
            payload = json.loads(body)
        except ValueError as error:
            raise ValueError(f"the body is not JSON: {error}") from None
        return _checked(kind, payload)
    except ValueError as problem:
        raise _Refused(f"invalid: {problem}", _json(400, {"error": str(problem)})) from None


def _checked(kind: str, payload: object) -> list[dict[str, Any]]:
    """The items of this delivery body; ValueError saying why when it breaks the contract."""
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        raise ValueError('the body is not {"items": [...]}')
    items: list[dict[str, Any]] = payload["items"]
    stamp = "updated_at" if kind in ("order_closed", "order_export") else "computed_at"
    for number, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"item {number} is not an object")
        for name, types in _FIELDS[kind].items():
            if name not in item:
                raise ValueError(f"item {number} lacks {name!r}")
            value = item[name]
            if isinstance(value, bool) or not isinstance(value, types):
                raise ValueError(f"item {number}: {name!r} is {value!r}")
        try:
            _instant(item[stamp])
        except ValueError:
            raise ValueError(f"item {number}: {stamp!r} is not an ISO-8601 instant with an offset") from None
        _check_schedule(number, item.get("schedule", []))
        for line_number, line in enumerate(item.get("lines", [])):
            if not isinstance(line, dict) or any(name not in line for name in _LINE_FIELDS):
                raise ValueError(f"item {number}: line {line_number} lacks one of {_LINE_FIELDS}")
    return items


def _check_schedule(number: int, schedule: object) -> None:
    """An ATS item's optional `schedule`: [{"date": "YYYY-MM-DD", "ats": int >= 0}], dates rising; ValueError else."""
    if not isinstance(schedule, list):
        raise ValueError(f"item {number}: 'schedule' is not a list")
    days: list[date] = []
    for point in schedule:
        if not isinstance(point, dict) or set(point) != {"date", "ats"}:
            raise ValueError(f"item {number}: a schedule point is not {{date, ats}}: {point!r}")
        ats = point["ats"]
        if isinstance(ats, bool) or not isinstance(ats, int) or ats < 0:
            raise ValueError(f"item {number}: a schedule point's ats is {ats!r}")
        if not isinstance(point["date"], str) or len(point["date"]) != len("2026-12-15"):
            raise ValueError(f"item {number}: a schedule point's date is {point['date']!r}")
        days.append(date.fromisoformat(point["date"]))  # ValueError for anything but a date
    if days != sorted(set(days)):
        raise ValueError(f"item {number}: the schedule's dates do not rise")


def _paging(limit_text: str | None, cursor: str | None) -> tuple[int, int]:
    """The limit and offset of a feed request; _Refused (400) when they are not counts."""
    try:
        limit = int(limit_text) if limit_text is not None else DEFAULT_LIMIT
        offset = int(cursor) if cursor is not None else 0
    except ValueError:
        limit = offset = -1
    if limit < 1 or offset < 0:
        refusal = _json(400, {"error": f"bad limit {limit_text!r} or cursor {cursor!r}"})
        raise _Refused("invalid: limit or cursor", refusal)
    return limit, offset


class FakePartner:
    """A partner's HTTP API on 127.0.0.1 (a free port), served by werkzeug in a background thread.

    All state is guarded by one lock; reading properties returns copies.
    """

    def __init__(
        self,
        token: str | None = "partner-token",  # noqa: S107 - the fake's own token, not a secret
        basic: tuple[str, str] | None = None,
        prefix: str = "/v1",
        latency: float = 0.0,
    ) -> None:
        self.token = token
        self.latency = latency  # every delivery is answered this many seconds after it arrived, at the earliest
        self.basic = basic
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._feeds: dict[str, list[dict[str, Any]]] = {feed: [] for feed in FEEDS}
        self._broken: dict[tuple[str, str | None], tuple[bytes, int]] = {}
        self._requests: list[Recorded] = []
        self._batches: list[tuple[str, str, list[dict[str, Any]]]] = []
        self._applied: set[str] = set()
        self._replays: list[str] = []
        self._script: list[tuple[Behaviour, bool]] = []
        self._chaos: tuple[float, random.Random] | None = None

    # --- running ---------------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve on a free port (the same port again when restarted after `stop()`); returns the partner."""
        if self._server is not None:
            raise RuntimeError("the fake partner is already running")
        self._stopping.clear()
        server = make_server(HOST, self._port or 0, self._app, threaded=True, request_handler=_Handler)
        self._server, self._port = server, server.port
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-partner-{server.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving; handlers still waiting (Slow) are woken and answer 503. Returns promptly; idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()  # the serving loop ends within its poll interval, then closes the listening socket
        thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port served on (kept across a restart)."""
        if self._port is None:
            raise RuntimeError("the fake partner was never started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL of the API: `http://127.0.0.1:{port}{prefix}`."""
        return f"http://{HOST}:{self.port}{self.prefix}"

    # --- what it serves and how it fails ---------------------------------------------------------------------

    def add_items(self, feed: str, items: Iterable[Mapping[str, Any]]) -> None:
        """Append items to the feed "stock" or "acknowledgements"."""
        self._check_feed(feed)
        with self._lock:
            self._feeds[feed].extend(dict(item) for item in items)

    def break_page(self, feed: str, cursor: str | None, body: bytes, status: int = 200) -> None:
        """Serve this raw body (as application/json) for this cursor of the feed, until `mend_page`.

        `cursor` is matched as the query gives it: None is a request without a cursor (not the same as "0").
        """
        self._check_feed(feed)
        with self._lock:
            self._broken[(feed, cursor)] = (body, status)

    def mend_page(self, feed: str, cursor: str | None) -> None:
        """Serve that page normally again."""
        with self._lock:
            self._broken.pop((feed, cursor), None)

    def script(self, *behaviours: Behaviour, for_feeds: bool = False) -> None:
        """Queue behaviours, consumed in order by deliveries, and also by feed requests when `for_feeds`.

        A feed request takes the next behaviour only when that one was queued `for_feeds`.
        """
        with self._lock:
            self._script.extend((behaviour, for_feeds) for behaviour in behaviours)

    @property
    def pending(self) -> list[Behaviour]:
        """The scripted behaviours not consumed yet."""
        with self._lock:
            return [behaviour for behaviour, _ in self._script]

    def chaos(self, ratio: float, seed: int) -> None:
        """From now on each delivery, with probability `ratio`, gets 500, 429 (Retry-After 0), Reset or Lost.

        Draws come from `random.Random(seed)`, in the order requests arrive; scripted behaviours come first.
        """
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio {ratio} is not between 0 and 1")
        with self._lock:
            self._chaos = (ratio, random.Random(seed))

    def calm(self) -> None:
        """Turn chaos off."""
        with self._lock:
            self._chaos = None

    # --- what it saw -----------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        """Every request received, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def batches(self) -> list[tuple[str, str, list[dict[str, Any]]]]:
        """The applied batches, in order: (kind, idempotency key, items)."""
        with self._lock:
            return [(kind, key, list(items)) for kind, key, items in self._batches]

    @property
    def replays(self) -> list[str]:
        """The keys of the deliveries answered again without being applied, in order."""
        with self._lock:
            return list(self._replays)

    def items(self, kind: str) -> list[dict[str, Any]]:
        """Every applied item of this kind ("ats", "channel_ats", "order_closed", "order_export"), in order."""
        self._check_kind(kind)
        with self._lock:
            return [dict(item) for batch_kind, _, items in self._batches if batch_kind == kind for item in items]

    def arrivals(self, kind: str) -> Counter[str]:
        """How many times each order_id (each sku for "ats" and "channel_ats") was applied."""
        name = "sku" if kind in ("ats", "channel_ats") else "order_id"
        return Counter(str(item[name]) for item in self.items(kind))

    def ats_view(self) -> dict[str, int]:
        """SKU -> ATS, from the item with the latest computed_at of each SKU (on a tie, the later arrival)."""
        return {sku: int(item["ats"]) for (sku,), item in self._latest("ats", ("sku",)).items()}

    def schedule_view(self) -> dict[str, list[tuple[str, int]] | None]:
        """SKU -> its latest item's schedule as (date, ats) pairs (None: the item carried none)."""
        latest = self._latest("ats", ("sku",)).items()
        return {
            sku: None if "schedule" not in item else [(p["date"], p["ats"]) for p in item["schedule"]]
            for (sku,), item in latest
        }

    def channel_view(self) -> dict[tuple[str, str, str], int]:
        """(sku, assembly, collection) -> ATS, kept like `ats_view`."""
        latest = self._latest("channel_ats", ("sku", "assembly", "collection"))
        return {(sku, assembly, collection): int(item["ats"]) for (sku, assembly, collection), item in latest.items()}

    def wait_for(self, predicate: Callable[[FakePartner], bool], timeout: float = 10.0) -> None:
        """Wait until `predicate(self)` holds (checked at every request); AssertionError at the deadline."""
        with self._changed:
            if self._changed.wait_for(lambda: predicate(self), timeout):
                return
            summary = Counter(record.outcome for record in self._requests)
            last = "\n  ".join(str(record) for record in self._requests[-8:]) or "(none)"
            name = getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(
                f"the fake partner did not see {name} within {timeout} s: {len(self._requests)} requests "
                f"({dict(summary)}), {len(self._batches)} batches applied, {len(self._replays)} replays, "
                f"{len(self._script)} scripted behaviours left; the last requests:\n  {last}"
            )

    # --- serving ---------------------------------------------------------------------------------------------

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        response = self._serve(request, environ)
        return response(environ, start_response)

    def _serve(self, request: Request, environ: WSGIEnvironment) -> Response:
        record = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.args.items()),
            headers=dict(request.headers.items()),
            body=request.get_data(),
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        try:
            return self._route(request, record, environ)
        except _Refused as refused:
            return self._answer(record, refused.outcome, refused.response)

    def _route(self, request: Request, record: Recorded, environ: WSGIEnvironment) -> Response:
        route = request.path[len(self.prefix) + 1 :] if request.path.startswith(self.prefix + "/") else ""
        if route not in FEEDS and route not in DELIVERIES:
            raise _Refused("not found", _json(404, {"error": f"no such path: {request.path}"}))
        expected = "GET" if route in FEEDS else "POST"
        if request.method != expected:
            raise _Refused("method not allowed", _json(405, {"error": f"use {expected}"}, {"Allow": expected}))
        if not self._authorized(request):
            raise _Refused(
                "unauthorized", _json(401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Bearer realm="partner"'})
            )
        if route in FEEDS:
            return self._serve_feed(route, request, record, environ)
        return self._serve_delivery(DELIVERIES[route], request, record, environ)

    def _serve_feed(self, feed: str, request: Request, record: Recorded, environ: WSGIEnvironment) -> Response:
        cursor = request.args.get("cursor")
        limit, offset = _paging(request.args.get("limit"), cursor)
        with self._lock:
            behaviour = self._next(feed=True)
        if isinstance(behaviour, Status):
            return self._answer(record, f"status {behaviour.code}", _scripted(behaviour))
        if isinstance(behaviour, Reset | Lost):
            self._record(record, "reset", None)
            _reset(environ)
        if isinstance(behaviour, Slow):
            self._record(record, "slow", 200)
            if self._stopping.wait(behaviour.seconds):
                return self._amend(record, _json(503, {"error": "stopping"}))
        outcome, response = self._page(feed, cursor, offset, limit)
        # a slow page was recorded before its wait: only its status may change
        return self._amend(record, response) if behaviour is not None else self._answer(record, outcome, response)

    def _page(self, feed: str, cursor: str | None, offset: int, limit: int) -> tuple[str, Response]:
        """The outcome and the answer of a feed request."""
        with self._lock:
            broken = self._broken.get((feed, cursor))
            if broken is not None:
                return "broken page", Response(broken[0], status=broken[1], mimetype="application/json")
            items = self._feeds[feed]
            if offset > len(items):
                return "invalid: cursor", _json(400, {"error": f"unknown cursor {cursor!r}"})
            end = min(offset + limit, len(items))
            return "page", _json(
                200, {"items": items[offset:end], "next_cursor": str(end), "has_more": end < len(items)}
            )

    def _serve_delivery(self, kind: str, request: Request, record: Recorded, environ: WSGIEnvironment) -> Response:
        key = record.idempotency_key
        if not key:
            raise _Refused("invalid: no Idempotency-Key", _json(400, {"error": "Idempotency-Key missing"}))
        items = _items(kind, request.mimetype, record.body)
        if self.latency and self._stopping.wait(self.latency):
            return self._answer(record, "stopping", _json(503, {"error": "stopping"}))
        with self._lock:
            behaviour = self._next(feed=False)
            if isinstance(behaviour, Status) and not 200 <= behaviour.code < 300:
                return self._answer(record, f"status {behaviour.code}", _scripted(behaviour))
            if isinstance(behaviour, Reset):
                self._record(record, "reset", None)
            elif isinstance(behaviour, Slow):
                self._record(record, "slow", 200)
            else:
                result = self._apply(kind, key, items)
                if isinstance(behaviour, Lost):
                    self._record(record, f"lost {result}", None)
                elif isinstance(behaviour, Status):
                    return self._answer(record, f"status {behaviour.code} {result}", _scripted(behaviour))
                else:
                    return self._answer(
                        record, result, _json(200, {"accepted": len(items), "replay": result == "replay"})
                    )
        if isinstance(behaviour, Reset | Lost):
            _reset(environ)
        assert isinstance(behaviour, Slow)
        if self._stopping.wait(behaviour.seconds):
            return self._amend(record, _json(503, {"error": "stopping"}))
        return _json(200, {"accepted": 0, "applied": False})

    def _next(self, *, feed: bool) -> Behaviour | None:
        """The behaviour this request gets: the next scripted one, else a chaos draw (deliveries only)."""
        if self._script and (not feed or self._script[0][1]):
            return self._script.pop(0)[0]
        if feed or self._chaos is None:
            return None
        ratio, rng = self._chaos
        return rng.choice(_CHAOS) if rng.random() < ratio else None

    def _apply(self, kind: str, key: str, items: list[dict[str, Any]]) -> str:
        """Apply a batch unless its key was applied already; "applied" or "replay"."""
        if key in self._applied:
            self._replays.append(key)
            return "replay"
        self._applied.add(key)
        self._batches.append((kind, key, items))
        return "applied"

    def _record(self, record: Recorded, outcome: str, status: int | None) -> None:
        """Record the request with its outcome and status (None: no answer) and wake the waiters."""
        record.outcome, record.status = outcome, status
        with self._changed:
            self._requests.append(record)
            self._changed.notify_all()

    def _answer(self, record: Recorded, outcome: str, response: Response) -> Response:
        """Record the request with its outcome and the status of this response, which is returned to be sent."""
        self._record(record, outcome, response.status_code)
        return response

    def _amend(self, record: Recorded, response: Response) -> Response:
        """Correct the status of a request recorded before it was answered."""
        with self._changed:
            record.status = response.status_code
            self._changed.notify_all()
        return response

    def _authorized(self, request: Request) -> bool:
        if self.token is None and self.basic is None:
            return True
        given = request.authorization
        if given is None:
            return False
        if given.type == "bearer" and self.token is not None:
            return given.token == self.token
        if given.type == "basic" and self.basic is not None:
            return (given.username, given.password) == self.basic
        return False

    def _latest(self, kind: str, names: tuple[str, ...]) -> dict[tuple[str, ...], dict[str, Any]]:
        latest: dict[tuple[str, ...], tuple[datetime, dict[str, Any]]] = {}
        for item in self.items(kind):
            identity = tuple(str(item[name]) for name in names)
            moment = _instant(item["computed_at"])
            if identity not in latest or moment >= latest[identity][0]:
                latest[identity] = (moment, item)
        return {identity: item for identity, (_, item) in latest.items()}

    @staticmethod
    def _check_feed(feed: str) -> None:
        if feed not in FEEDS:
            raise ValueError(f"unknown feed {feed!r}: one of {FEEDS}")

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}: one of {KINDS}")


@contextlib.contextmanager
def running(**options: Any) -> Iterator[FakePartner]:
    """A started FakePartner(**options) for the duration of the block, stopped afterwards whatever happens."""
    partner = FakePartner(**options)
    with partner:
        yield partner
