"""Structured logs: JSON lines by default, readable lines for people. Configured explicitly, never at import."""

from __future__ import annotations

import logging
from typing import Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]


def configure(fmt: LogFormat = "json", stream: TextIO | None = None, level: str = "info") -> None:
    """Send every structlog event to `stream` (stderr by default) in `fmt`, at `level` and above."""
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
            structlog.processors.format_exc_info,
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
