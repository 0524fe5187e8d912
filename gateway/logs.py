"""Structured logs: JSON lines by default, readable lines for people. Configured explicitly, never at import.

Every line has `timestamp`, `level`, `event` and the bound context. A `run_id` bound while an inbound item is
handled follows it from pickup to archive and into the delivery of the outbox rows it produced. A redaction
processor replaces secret values (tokens, passwords, Authorization headers) wherever they appear.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]

REDACTED = "[redacted]"
# a key one of whose parts (split on _ and -) names a secret: password, token_file, api_key, Authorization...
_SECRET_KEYS = re.compile(
    r"(^|[_-])(password|passphrase|secret|token|authorization|apikey|api[_-]key|credentials?)($|[_-])", re.IGNORECASE
)
_SECRET_TEXT = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/-]{8,}=*")
_known_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """A secret value read at run time (a token, a password): it is redacted from every log line."""
    if len(value) >= 4:
        _known_secrets.add(value)


def _scrub(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {_scrub(str(k)): REDACTED if _SECRET_KEYS.search(str(k)) and v else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(item) for item in value]
    text = value if isinstance(value, str) else str(value)  # an exception, a path, bytes: as they would render
    for secret in sorted(_known_secrets, key=len, reverse=True):  # a secret inside another: the longer first
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _SECRET_TEXT.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def scrub(text: str) -> str:
    """`text` without the secrets read at run time nor credentials after Bearer or Basic."""
    scrubbed: str = _scrub(text)
    return scrubbed


def redact(_logger: object, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: secret-looking keys and known secret values never reach the output."""
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key) and value and key != "event":
            event[key] = REDACTED
        else:
            event[key] = _scrub(value)
    return event


def configure(
    fmt: LogFormat = "json",
    stream: TextIO | None = None,
    level: str = "info",
    extra: Iterable[structlog.typing.Processor] = (),
) -> None:
    """Send every structlog event to `stream` (stderr by default) in `fmt`, at `level` and above; `extra`
    processors (metrics, for one) see each event before it is rendered."""
    renderer: structlog.typing.Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    threshold = logging.getLevelNamesMapping()[level.upper()]
    extra = list(extra)
    # extra processors (metrics) see every event whatever the level; the level filter comes after them
    filters: list[structlog.typing.Processor] = [_LevelFilter(threshold)] if extra else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            *extra,
            *filters,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if extra else threshold),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


class Without:
    """A processor that drops the events named (those something else already shows, once)."""

    def __init__(self, events: Iterable[str]) -> None:
        self.events = frozenset(events)

    def __call__(self, _logger: object, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if event.get("event") in self.events:
            raise structlog.DropEvent
        return event


class _LevelFilter:
    """Drops events below a level (after the processors that must see them all)."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.levels = logging.getLevelNamesMapping()

    def __call__(self, _logger: object, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if self.levels.get(str(event.get("level", "info")).upper(), logging.INFO) < self.threshold:
            raise structlog.DropEvent
        return event


def get(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger for module `name`."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


@contextmanager
def run(run_id: str | None = None) -> Iterator[str]:
    """Bind a `run_id` to every log line of the block (an inbound item's handling); yields it."""
    chosen = run_id or uuid.uuid4().hex[:16]
    with structlog.contextvars.bound_contextvars(run_id=chosen):
        yield chosen


def current_run() -> str | None:
    """The run_id bound now, if any."""
    found = structlog.contextvars.get_contextvars().get("run_id")
    return found if isinstance(found, str) else None
