"""What the console's pages work out before rendering: ages as an operator reads them, the chart's bars scaled to
the busiest hour, a partner's sources with the worker's state of each."""

from __future__ import annotations

from gateway.domain import instant
from gateway.platform_api.console import render
from gateway.service.console import HOUR, Activity
from gateway.settings import PartnerSettings


def test_an_age_is_told_in_the_largest_units_that_fit() -> None:
    """Seconds, minutes, hours and minutes, days and hours; nothing is '-'."""
    assert [render.age(s) for s in (None, 0.4, 59, 60, 3599, 3600 + 120, 86400 * 2 + 3600 * 4)] == [
        "-",
        "0 s",
        "59 s",
        "1 min",
        "59 min",
        "1 h 2 min",
        "2 d 4 h",
    ]


def test_the_charts_bars_are_scaled_to_the_busiest_hour_and_labelled_with_their_hour() -> None:
    """The busiest hour's bar fills the height, an empty hour has none; each says its UTC hour and its count."""
    start = instant.parse("2026-03-01T10:00:00Z")
    items = (0,) * 22 + (2, 4)
    deliveries = (1,) + (0,) * 23
    chart = render.chart(Activity(start, items, deliveries))
    assert len(chart.items) == len(chart.deliveries) == 24
    assert (chart.top, chart.first, chart.total_items, chart.total_deliveries) == (4, "10:00", 6, 1)
    assert chart.items[-1].height == render.CHART_HEIGHT
    assert chart.items[-1].y == 0
    assert chart.items[-2].height == render.CHART_HEIGHT // 2
    assert chart.items[0].height == 0
    assert chart.items[-1].label == "09:00 UTC: 4 item(s) received"
    assert chart.deliveries[0].label == "10:00 UTC: 1 message(s) delivered"
    assert chart.deliveries[0].x == chart.items[0].x + 8


def test_an_idle_day_draws_no_bar_and_divides_by_nothing() -> None:
    """A day with nothing: every bar empty, the scale's top 1."""
    chart = render.chart(Activity(HOUR * 1000, (0,) * 24, (0,) * 24))
    assert chart.top == 1
    assert {bar.height for bar in (*chart.items, *chart.deliveries)} == {0}


def test_a_partners_sources_show_the_workers_state_or_that_this_process_polls_them_not() -> None:
    """Configured sources and feeds in order; one the worker tracks gets its last poll and error, stale or not."""
    config = PartnerSettings.model_validate(
        {
            "stock_mode": "simple",
            "sources": [
                {"type": "folder", "name": "drop", "kind": "stock", "path": "/srv/drop"},
                {"type": "folder", "name": "acks", "kind": "acknowledgements", "path": "/srv/acks"},
            ],
        }
    )
    state = {
        "partner": "acme",
        "source": "drop",
        "last_ok": "2026-03-01T10:00:00Z",
        "seconds_since_ok": 90.0,
        "last_error": "disk <full>",
        "last_error_at": "2026-03-01T10:01:00Z",
        "stale": True,
    }
    other = state | {"partner": "bolt"}
    lines = render.source_lines("acme", config, [state, other])
    assert [(line.name, line.type, line.polled_here) for line in lines] == [
        ("drop", "folder", True),
        ("acks", "folder", False),
    ]
    drop = lines[0]
    assert (drop.last_ok, drop.since_ok, drop.last_error, drop.stale) == (
        "2026-03-01 10:00:00 UTC",
        "1 min",
        "disk <full>",
        True,
    )
