"""Instants as whole microseconds since the Unix epoch, UTC.

The engine compares instants constantly (stale snapshots, confirmations against inventory timestamps), and the
store keeps them as integers, so one integer form serves everywhere. Conversions live here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

Instant = int

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_datetime(moment: datetime, assume: tzinfo = UTC) -> Instant:
    """Return the instant of `moment`; a naive `moment` is read in the zone `assume`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=assume)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_datetime(instant: Instant) -> datetime:
    """Return `instant` as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=instant)


def to_iso(instant: Instant | None) -> str | None:
    """Return `instant` in ISO 8601 with a `Z` suffix, or None for None."""
    if instant is None:
        return None
    text = to_datetime(instant).isoformat()
    return text.removesuffix("+00:00") + "Z"


def to_iso_fixed(instant: Instant) -> str:
    """Return `instant` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`: always the same width, so such texts sort in time order."""
    return to_datetime(instant).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str, assume: tzinfo = UTC) -> Instant:
    """Parse an ISO 8601 timestamp; one without an offset is read in the zone `assume`.

    Raises ValueError with a readable message when `text` is not a timestamp.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}") from None
    return from_datetime(moment, assume)
