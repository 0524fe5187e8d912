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
_SECRET_KEYS = re.compile(r"(password|passphrase|secret|token|authorization|api[_-]?key|credential)", re.IGNORECASE)
_SECRET_TEXT = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}")
_known_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """A secret value read at run time (a token, a password): it is redacted from every log line."""
    if len(value) >= 4:
        _known_secrets.add(value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _known_secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return _SECRET_TEXT.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
    if isinstance(value, Mapping):
        return {k: REDACTED if _SECRET_KEYS.search(str(k)) and v else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


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
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            *extra,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


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
