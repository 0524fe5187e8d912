"""Instants as whole microseconds since the Unix epoch, UTC.

The engine compares instants constantly (stale snapshots, confirmations against inventory timestamps), and the
store keeps them as integers, so one integer form serves everywhere. Conversions live here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

Instant = int

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIRST = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
LAST = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


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

    Raises ValueError with a readable message when `text` is not a timestamp, or names an instant outside the
    years 1 to 9999 once read in UTC (it could never be written back).
    """
    try:
        moment = datetime.fromisoformat(text.strip())
        found = from_datetime(moment, assume)
    except (ValueError, OverflowError):
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}") from None
    if not FIRST <= found <= LAST:
        raise ValueError(f"{text!r} is outside the years 1 to 9999 in UTC")
    return found
