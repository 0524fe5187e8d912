"""Durations as people type them (`90m`, `2h`, `3d`, `1d12h`), in microseconds like every instant of the gateway."""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}  # seconds per unit
_PART = re.compile(r"(\d{1,9})([smhdw])")
_WHOLE = re.compile(r"(?:\d{1,9}[smhdw])+")


def parse_duration(text: str) -> int:
    """The duration `text` in microseconds: one or more NUMBER UNIT parts, units s, m, h, d (days) and w (weeks),
    e.g. `90m`, `2h`, `3d`, `1d12h`; ValueError saying what is expected otherwise."""
    compact = text.strip().lower()
    if not _WHOLE.fullmatch(compact):
        raise ValueError(f"{text!r} is not a duration: expected a number and a unit (s, m, h, d, w), e.g. 90m, 2h, 3d")
    seconds = sum(int(number) * UNITS[unit] for number, unit in _PART.findall(compact))
    return seconds * 1_000_000
