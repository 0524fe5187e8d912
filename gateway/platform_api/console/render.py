"""The console's HTML: Jinja2 templates of this package, every value escaped (autoescape), the page's headers
strict (no script, no frame, nothing cached); and what a page shows worked out beforehand (ages, the chart's bars,
a partner's sources with what the worker knows of them)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.service.console import HOUR, Activity
from gateway.settings import PartnerSettings

# the pages hold no script and load nothing: the style sheet is inline, the chart inline SVG
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

SourceStates = Callable[[], list[dict[str, Any]]]  # what the worker knows of its sources (Sources.as_dicts)

_SECOND = 1_000_000


def when(moment: Instant | None) -> str:
    """An instant as an operator reads it: UTC, to the second."""
    if moment is None:
        return "-"
    return instant.to_datetime(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(seconds: float | None) -> str:
    """A duration as an operator reads it: 42 s, 7 min, 3 h 5 min, 2 d 4 h."""
    if seconds is None:
        return "-"
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def pretty(report: str | None) -> str:
    """A ledger entry's JSON report, indented (as stored when it is not JSON)."""
    if not report:
        return ""
    try:
        return json.dumps(json.loads(report), indent=2, ensure_ascii=False)
    except ValueError:
        return report


_ENV = Environment(
    loader=PackageLoader("gateway.platform_api.console", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(when=when, age=age, pretty=pretty)


def page(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A template rendered as a page, with the console's headers."""
    body = _ENV.get_template(template).render(**values)
    return HTMLResponse(body, status_code=status, headers=HEADERS)


@dataclass(frozen=True)
class Bar:
    """One bar of the chart: where it stands and what it says on hover."""

    x: int
    y: int
    height: int
    label: str


@dataclass(frozen=True)
class Chart:
    """The last day of a partner as two series of 24 bars (items, deliveries), in a box `width` x `height`."""

    width: int
    height: int
    items: tuple[Bar, ...]
    deliveries: tuple[Bar, ...]
    top: int  # the largest count, the scale's top
    first: str  # the first hour, as HH:00
    total_items: int
    total_deliveries: int


CHART_WIDTH, CHART_HEIGHT, SLOT = 480, 100, 20  # 24 hours of 20 px, two 8 px bars each


def chart(activity: Activity) -> Chart:
    """The bars of a partner's last day, scaled to the busiest hour."""
    top = max((*activity.items, *activity.deliveries, 1))

    def bars(counts: tuple[int, ...], offset: int, what: str) -> tuple[Bar, ...]:
        found = []
        for hour, count in enumerate(counts):
            height = round(count * CHART_HEIGHT / top)
            start = instant.to_datetime(activity.start + hour * HOUR).astimezone(UTC).strftime("%H:00")
            label = f"{start} UTC: {count} {what}"
            found.append(Bar(hour * SLOT + offset, CHART_HEIGHT - height, height, label))
        return tuple(found)

    first = instant.to_datetime(activity.start).astimezone(UTC).strftime("%H:00")
    return Chart(
        CHART_WIDTH,
        CHART_HEIGHT,
        bars(activity.items, 2, "item(s) received"),
        bars(activity.deliveries, 10, "message(s) delivered"),
        top,
        first,
        sum(activity.items),
        sum(activity.deliveries),
    )


@dataclass(frozen=True)
class SourceLine:
    """One source or feed of a partner, and what the worker serving this console knows of it."""

    name: str
    type: str
    polled_here: bool
    last_ok: str
    since_ok: str
    last_error: str | None
    last_error_at: str
    stale: bool


def source_lines(partner: str, config: PartnerSettings, states: list[dict[str, Any]]) -> list[SourceLine]:
    """The partner's configured sources and feeds in order, each with its state when this process polls it."""
    known: Mapping[str, dict[str, Any]] = {s["source"]: s for s in states if s["partner"] == partner}
    named: list[tuple[str, str]] = [(source.name, source.type) for source in config.sources]
    if config.api is not None:
        named.extend((f"api:{feed}", "api") for feed in config.api.feeds)
    lines = []
    for name, kind in named:
        state = known.get(name)
        if state is None:
            lines.append(SourceLine(name, kind, False, "-", "-", None, "-", False))
            continue
        lines.append(
            SourceLine(
                name,
                kind,
                True,
                when(instant.parse(state["last_ok"])) if state["last_ok"] else "never",
                age(state["seconds_since_ok"]),
                state["last_error"],
                when(instant.parse(state["last_error_at"])) if state["last_error_at"] else "-",
                bool(state["stale"]),
            )
        )
    return lines


def seconds_since(moment: Instant | None, now: Instant) -> float | None:
    """Seconds from `moment` to `now`, None without a moment."""
    return None if moment is None else (now - moment) / _SECOND
