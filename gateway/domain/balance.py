"""A cumulative balance by date, kept incrementally: what a placement check asks in O(log n), not a rescan.

The available-to-promise rule (docs/rules.md, "Dated supply and dated demand") asks, for a line wanted on date D,
the smallest cumulative balance (supply up to d minus demand up to d) over every date d >= D. Rescanning all lines
per placement costs O(lines); this structure costs O(log dates) per change and per question.

Each known date is a leaf holding its net change (supply arriving that day minus demand due that day). A node
holds two numbers for its range of dates: the sum of the changes, and the smallest running total within the range
(the smallest prefix sum). Two adjacent ranges combine as (sum_a + sum_b, min(min_a, sum_a + min_b)). The
cumulative balance on d is the prefix sum up to d; the minimum over every d >= D is the prefix up to D plus the
smallest running total of the dates after D. A receipt or a line is a change to one leaf (the "range add on every
date from D on" of the rule, written as one point change of the prefix sums), so no lazy propagation is needed.

Dates are added as they are first met; a new date rebuilds the tree (O(dates)), which happens once per distinct
date (a few hundred collection and receipt dates), not per line. Dates before today need no special care: the
cumulative balance on today already sums everything before it, and callers ask only for dates from today on.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable
from datetime import date

# Stands for "no date in this range": above any real running total, so min() never picks it.
_EMPTY_MIN = 1 << 80


class CumulativeBalance:
    """Net supply minus demand per date, with the smallest cumulative balance from any date on in O(log n)."""

    def __init__(self, changes: Iterable[tuple[date, int]] = ()) -> None:
        self._net: dict[date, int] = {}
        for day, units in changes:
            self._net[day] = self._net.get(day, 0) + units
        self._days: list[date] = sorted(self._net)
        self._rebuild()

    def _rebuild(self) -> None:
        size = 1
        while size < len(self._days):
            size *= 2
        self._size = size
        self._position = {day: i for i, day in enumerate(self._days)}
        self._sums = [0] * (2 * size)
        self._mins = [_EMPTY_MIN] * (2 * size)
        for i, day in enumerate(self._days):
            self._sums[size + i] = self._mins[size + i] = self._net[day]
        for node in range(size - 1, 0, -1):
            self._pull(node)

    def _pull(self, node: int) -> None:
        left, right = 2 * node, 2 * node + 1
        self._sums[node] = self._sums[left] + self._sums[right]
        self._mins[node] = min(self._mins[left], self._sums[left] + self._mins[right])

    def add(self, day: date, units: int) -> None:
        """Add `units` to the balance from `day` on: supply is positive, demand negative (a line removed: the
        opposite of what it added)."""
        if day not in self._net:
            self._net[day] = units
            insort(self._days, day)
            self._rebuild()
            return
        net = self._net[day] = self._net[day] + units
        sums, mins = self._sums, self._mins
        node = self._size + self._position[day]
        sums[node] = mins[node] = net
        node //= 2
        while node:  # _pull, inlined: this runs for every line placed
            left = 2 * node
            sums[node] = sums[left] + sums[left + 1]
            mins[node] = min(mins[left], sums[left] + mins[left + 1])
            node //= 2

    def _range(self, start: int, stop: int) -> tuple[int, int]:
        """(sum, smallest running total) of the leaves start..stop-1, in date order."""
        left_sum, left_min = 0, _EMPTY_MIN
        right_sum, right_min = 0, _EMPTY_MIN
        lo, hi = start + self._size, stop + self._size
        while lo < hi:
            if lo & 1:
                left_min = min(left_min, left_sum + self._mins[lo])
                left_sum += self._sums[lo]
                lo += 1
            if hi & 1:
                hi -= 1
                right_min = min(self._mins[hi], self._sums[hi] + right_min)
                right_sum += self._sums[hi]
            lo //= 2
            hi //= 2
        return left_sum + right_sum, min(left_min, left_sum + right_min)

    def cumulative(self, day: date) -> int:
        """Supply minus demand of every date up to and including `day`."""
        return self._range(0, bisect_right(self._days, day))[0]

    def room(self, day: date) -> int:
        """The smallest cumulative balance over `day` and every later date: the most a line for `day` may take
        (negative when later promises already exceed what is there)."""
        split = bisect_right(self._days, day)  # the first date after `day`
        if split == len(self._days):
            return self._sums[1]  # no later date: the balance of `day` is the total
        # One walk from the root down to the first later date: every right sibling passed on the way lies wholly
        # after `day`, and `prefix` ends as the balance of `day` (a placement asks this, so one walk, not two).
        sums, mins = self._sums, self._mins
        node, low, width, prefix, lowest = 1, 0, self._size, 0, _EMPTY_MIN
        while node < self._size:
            width //= 2
            left = 2 * node
            if split < low + width:
                lowest = min(lowest, prefix + sums[left] + mins[left + 1])
                node = left
            else:
                prefix += sums[left]
                low += width
                node = left + 1
        return min(prefix, prefix + mins[node], lowest)

    @property
    def days(self) -> tuple[date, ...]:
        """Every date the balance has met, in order."""
        return tuple(self._days)
