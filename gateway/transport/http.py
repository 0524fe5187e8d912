"""Partner HTTP APIs, with requests: the reference API of docs/partner-api.md, and the base of partner adapters.

One `requests.Session` per partner; connect and read timeouts are always set, and each request has a total
deadline (`api.request_deadline`, see bounds.py). Bodies are streamed: a feed page is cut past
`api.max_page_bytes` (decompressed), an error answer is read no further than its excerpt. A redirect is
followed only within the origin it came from (same scheme, host and port), at most three times; a delivery
follows only 307 and 308, which resend the batch as it was. Errors leave this module as the project's own:
TransportError when a feed cannot be read (PageTooLarge for a page over the limit), DeliveryFailed (saying
whether a retry may help) when a batch was not taken. Secrets are read from the environment or a file named in
the configuration, registered for redaction in every form they are sent in, and never appear in an error or a
log.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import functools
import importlib
import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urljoin

import requests

from gateway import logs
from gateway.domain import instant
from gateway.domain.atp import SchedulePoint
from gateway.domain.messages import MessageKind
from gateway.formats import pages
from gateway.formats.problems import Problems
from gateway.secrets import SecretError, read_secret
from gateway.settings import ApiSettings
from gateway.transport.bounds import (
    MAX_REDIRECTS,
    Deadline,
    GuardedAdapter,
    read_excerpt,
    read_limited,
    same_origin,
    show_origin,
)
from gateway.transport.errors import REFUSES_ALL, ApiConfigError, DeliveryFailed, RedirectRefused, TransportError

USER_AGENT = "stock-gateway/0.1"
MAX_ERROR_BODY = 2000  # characters of a partner's answer kept with an error
_ERROR_BYTES = 4 * MAX_ERROR_BODY  # bytes read of an error answer: MAX_ERROR_BODY characters at most 4 bytes each
_REPLY_BYTES = 64 * 1024  # bytes read of a delivery's 2xx answer (read, so its connection is kept for the next)
KEEPS_BODY = frozenset({307, 308})  # the redirects that resend a POST as it was (301-303 would make it a GET)
RETRYABLE_STATUSES = frozenset({408, 429})
MAX_RETRY_AFTER = 86_400.0  # a day: a longer Retry-After is taken as a day

__all__ = [  # with the errors other modules import from here though they now live in errors.py
    "KEEPS_BODY",
    "MAX_ERROR_BODY",
    "MAX_RETRY_AFTER",
    "REFUSES_ALL",
    "RETRYABLE_STATUSES",
    "USER_AGENT",
    "ApiConfigError",
    "DeliveryFailed",
    "PartnerApi",
    "RedirectRefused",
    "TransportError",
    "load_adapter",
    "retry_after_seconds",
]

# a batch repeats a few instants many times (one per snapshot, one per transaction): format each once
_iso = functools.lru_cache(maxsize=4096)(instant.to_iso)
_iso_fixed = functools.lru_cache(maxsize=4096)(instant.to_iso_fixed)
_json_string = json.encoder.encode_basestring_ascii  # a string as json.dumps writes it (ASCII, escaped, quoted)


@functools.lru_cache(maxsize=4096)
def _json_iso(moment: instant.Instant | None) -> str:
    return json.dumps(_iso(moment))


@functools.lru_cache(maxsize=4096)
def _json_iso_fixed(moment: instant.Instant) -> str:
    return json.dumps(_iso_fixed(moment))


def _ats_document(messages: Sequence[Message]) -> bytes:
    """What `json.dumps(PartnerApi().body("ats", messages), separators=(",", ":"))` writes, byte for byte, without
    a dict per item: a batch holds thousands of values, and their dicts cost more than writing them."""
    text = _json_string
    items = ",".join(
        [
            f'{{"message_id":{m.id},"sku":{text(m.key)},"ats":{"null" if m.value is None else m.value},'
            f'"as_of":{_json_iso(m.as_of)},"computed_at":{_json_iso_fixed(m.created_at)}'
            f"{'' if m.schedule is None else _json_schedule(m.schedule)}}}"
            for m in messages
        ]
    )
    return f'{{"items":[{items}]}}'.encode()


def _json_schedule(points: Sequence[SchedulePoint]) -> str:
    """`,"schedule":[...]`, as json.dumps writes it after an item's other fields."""
    shown = ",".join([f'{{"date":"{point.day.isoformat()}","ats":{point.ats}}}' for point in points])
    return f',"schedule":[{shown}]'


def schedule_items(points: Sequence[SchedulePoint]) -> list[dict[str, Any]]:
    """An ATS item's `schedule`: the next dates at which the published ATP changes, with its value."""
    return [{"date": point.day.isoformat(), "ats": point.ats} for point in points]


class Message(Protocol):
    """What delivery needs of one outbox message (the store's OutboxRecord has it): a transport knows no store."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def value(self) -> int | None: ...
    @property
    def as_of(self) -> instant.Instant | None: ...
    @property
    def payload(self) -> str | None: ...
    @property
    def created_at(self) -> instant.Instant: ...
    @property
    def schedule(self) -> Sequence[SchedulePoint] | None: ...


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(MAX_RETRY_AFTER, max(0.0, (moment - (now or datetime.now(UTC))).total_seconds()))


def _header_problem(secret: str) -> str | None:
    """Why a secret is unfit for an HTTP header (it must be printable Latin-1), or None; never echoing it."""
    if not secret.isprintable() or not all(ord(c) < 256 for c in secret):
        return "holds a line break, a control character or a character outside Latin-1"
    return None


def _read_secret(env: str | None, file: os.PathLike[str] | None, what: str, environ: Mapping[str, str]) -> str | None:
    try:
        return read_secret(env, file, what, environ, check=_header_problem)
    except SecretError as exc:
        raise ApiConfigError(str(exc)) from exc


def _register_basic(username: str, password: str) -> None:
    """The forms basic credentials take on the wire, redacted like the password: a partner may echo them."""
    pair = f"{username}:{password}"
    logs.register_secret(pair)
    try:
        raw = pair.encode("latin-1")  # what requests encodes (the password is checked to be Latin-1)
    except UnicodeEncodeError:
        raw = pair.encode()
    encoded = base64.b64encode(raw).decode("ascii")
    logs.register_secret(encoded)
    logs.register_secret(encoded.rstrip("="))  # echoed without its padding


def _drain(response: requests.Response) -> None:
    """Read a short answer to its end, so its connection is kept for the next request (its words do not count:
    a 2xx is an acceptance, even if the rest of the answer is lost)."""
    with contextlib.suppress(requests.RequestException, OSError):
        read_excerpt(response, _REPLY_BYTES)


def _excerpt(response: requests.Response) -> str:
    """The start of a partner's answer, for an error: read no further than needed, never holding a secret."""
    try:
        raw = read_excerpt(response, _ERROR_BYTES)
    except (requests.RequestException, OSError):
        raw = b""
    text = logs.scrub(raw.decode(response.encoding or "utf-8", errors="replace"))  # a partner may echo our secret
    return text if len(text) <= MAX_ERROR_BODY else text[:MAX_ERROR_BODY] + "..."


class PartnerApi:
    """The reference partner API. A partner whose API differs gets a subclass named in its configuration
    (`api.adapter = "package.module:ClassName"`) overriding `url`, `document`, `body` or `item` (or `encode`, the
    bytes of a delivery request)."""

    # by feed and by kind of message (words that are strings: an adapter may key its own by "ats", "stock"...)
    FEED_PATHS: Mapping[str, str] = {pages.Feed.STOCK: "stock", pages.Feed.ACKNOWLEDGEMENTS: "acknowledgements"}
    DELIVERY_PATHS: Mapping[str, str] = {
        MessageKind.ATS: "ats",
        MessageKind.CHANNEL_ATS: "channel-ats",
        MessageKind.ORDER_CLOSED: "orders/closed",
        MessageKind.ORDER_EXPORT: "order-exports",
    }

    def __init__(self, partner: str, settings: ApiSettings, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.partner = partner
        self.settings = settings
        self.timeout = (settings.connect_timeout, settings.read_timeout)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        self.session.trust_env = False  # no proxy or netrc from the environment: the configuration says it all
        adapter = GuardedAdapter()  # its connections are cut when a request's deadline passes
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if settings.ca_file is not None:
            if not settings.ca_file.is_file():
                raise ApiConfigError(f"api.ca_file: {settings.ca_file} is not a readable file")
            self.session.verify = str(settings.ca_file)
        token = _read_secret(settings.token_env, settings.token_file, "the API token", environ)
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif settings.username is not None:
            password = _read_secret(settings.password_env, settings.password_file, "the API password", environ) or ""
            _register_basic(settings.username, password)
            self.session.auth = (settings.username, password)

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def url(self, path: str) -> str:
        """The URL of a path under the base URL."""
        return f"{self.settings.base_url}/{path}"

    # polling

    def fetch(self, feed: str, cursor: str | None) -> bytes:
        """The raw body of the feed's page after `cursor` (the first page for None)."""
        params: dict[str, str | int] = {"limit": self.settings.page_limit}
        if cursor is not None:
            params["cursor"] = cursor
        url = self.url(self.FEED_PATHS[feed])
        with Deadline(self.settings.request_deadline) as deadline:
            try:
                with self._exchange("GET", url, params=params) as response:
                    if not 200 <= response.status_code < 300:
                        raise TransportError(f"GET {url}: HTTP {response.status_code}: {_excerpt(response)}")
                    body = read_limited(url, response, self.settings.max_page_bytes)
            except (requests.RequestException, OSError, ValueError) as exc:  # ValueError: a header it cannot encode
                raise TransportError(self._failure(f"GET {url}", exc, deadline)) from exc
            if deadline.expired:  # a body that ends when the connection closes looks whole once cut: it is not
                raise TransportError(self._past_deadline(f"GET {url}"))
        return body

    def document(self, feed: str, body: bytes, problems: Problems) -> Any:
        """The page in the reference shape; an adapter maps its partner's shape here. None with problems when
        the body cannot be read."""
        return pages.decode(body, problems)

    # delivery

    def item(self, message: Message) -> dict[str, Any]:
        """One outbox message as an item of a delivery request."""
        computed_at = _iso_fixed(message.created_at)
        if message.kind == MessageKind.ATS:
            item: dict[str, Any] = {
                "message_id": message.id,
                "sku": message.key,
                "ats": message.value,
                "as_of": _iso(message.as_of),
                "computed_at": computed_at,
            }
            if message.schedule is not None:  # a SKU with dated supply only: others keep exactly the old item
                item["schedule"] = schedule_items(message.schedule)
            return item
        body: dict[str, Any] = json.loads(message.payload or "{}")
        body["message_id"] = message.id
        if message.kind == MessageKind.CHANNEL_ATS:
            body["computed_at"] = computed_at
        return body

    def body(self, kind: str, messages: Sequence[Message]) -> dict[str, Any]:
        """The JSON body of one delivery request."""
        return {"items": [self.item(message) for message in messages]}

    def encode(self, kind: str, messages: Sequence[Message]) -> bytes:
        """The bytes of one delivery request: `body` as compact JSON. An ATS batch in the reference shape (an adapter
        overriding neither `item` nor `body`) is written directly, the same bytes."""
        if kind == MessageKind.ATS and type(self).item is PartnerApi.item and type(self).body is PartnerApi.body:
            return _ats_document(messages)
        return json.dumps(self.body(kind, messages), separators=(",", ":")).encode()

    def send(self, kind: str, idempotency_key: str, messages: Sequence[Message]) -> int:
        """POST one batch; return the partner's 2xx status, or raise DeliveryFailed."""
        url = self.url(self.DELIVERY_PATHS[kind])
        data = self.encode(kind, messages)
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        with Deadline(self.settings.request_deadline) as deadline:
            try:
                with self._exchange("POST", url, data=data, headers=headers) as response:
                    status = response.status_code
                    if 200 <= status < 300:
                        _drain(response)
                        return status
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                    body = _excerpt(response)
            except RedirectRefused as exc:
                raise DeliveryFailed(str(exc), status=exc.status) from exc
            except (requests.RequestException, OSError, ValueError) as exc:
                raise DeliveryFailed(self._failure(f"POST {url}", exc, deadline)) from exc
        refused = 400 <= status < 500 and status not in RETRYABLE_STATUSES
        raise DeliveryFailed(
            f"HTTP {status} from POST {url}" + (f": {body}" if body else ""),
            status=status,
            body=body,
            retry_after=retry_after,
            retryable=not refused,
        )

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """The streamed answer to one request, following redirects within its origin (at most MAX_REDIRECTS);
        RedirectRefused for any other. Its body is for the caller to read and close."""
        target = url
        for hop in range(MAX_REDIRECTS + 1):
            response = self.session.request(
                method,
                target,
                params=params if hop == 0 else None,  # a redirect's Location carries its own query
                data=data,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
            if not response.is_redirect:
                return response
            status = response.status_code
            location = urljoin(response.url, self.session.get_redirect_target(response) or "")
            response.close()
            why = None
            if not same_origin(url, location):
                why = f"to another origin ({show_origin(location)}); only {show_origin(url)} is followed"
            elif method != "GET" and status not in KEEPS_BODY:
                why = f"with {status}, which would resend the {method} as a GET"
            elif hop == MAX_REDIRECTS:
                why = f"more than {MAX_REDIRECTS} times"
            if why is not None:
                raise RedirectRefused(f"{method} {url}: HTTP {status}: redirected {why}: refused", status)
            target = location
        raise AssertionError("unreachable: the last hop returns or raises")

    def _failure(self, what: str, exc: BaseException, deadline: Deadline) -> str:
        """Why a request failed, in words (the deadline first: cutting the connection is what failed it)."""
        if deadline.expired:
            return self._past_deadline(what)
        if isinstance(exc, requests.Timeout):
            return f"{what}: no answer within {self._timeouts()}"
        return logs.scrub(f"{what}: {type(exc).__name__}: {exc}")

    def _past_deadline(self, what: str) -> str:
        deadline = self.settings.request_deadline
        return f"{what}: no complete answer within the request deadline of {deadline:g}s (api.request_deadline)"

    def _timeouts(self) -> str:
        return f"{self.settings.connect_timeout:g}s to connect, {self.settings.read_timeout:g}s to read"


def load_adapter(partner: str, settings: ApiSettings, environ: Mapping[str, str] | None = None) -> PartnerApi:
    """The partner's API adapter: the class named by `api.adapter`, a PartnerApi or a subclass of it."""
    module_name, _, class_name = settings.adapter.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ApiConfigError(f"api.adapter: cannot import {module_name}: {exc}") from exc
    adapter = getattr(module, class_name, None)
    if not (isinstance(adapter, type) and issubclass(adapter, PartnerApi)):
        raise ApiConfigError(f"api.adapter: {settings.adapter} is not a subclass of {__name__}.PartnerApi")
    made: PartnerApi = adapter(partner, settings, environ)
    return made
