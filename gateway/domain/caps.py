"""Caps per assembly and collection (seed 000): how many units of a SKU one collection may take.

A cap setting for one SKU in one assembly has two parts: the assembly's default (a number, or none) and
per-collection overrides (a number, or an explicit "no maximum"). The effective cap of a collection is its own
override if it has one, else the assembly default, else none. The channel ATS is what a collection may still
take: the SKU's ATS, bounded by the room left under the cap. A cap never raises ATS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from gateway.domain.errors import Refusal, Shortage

ALL_COLLECTIONS = "*"


class CapSource(StrEnum):
    """Where an effective cap comes from."""

    COLLECTION = "collection override"
    ASSEMBLY = "assembly default"
    NONE = "none"


class EffectiveCap(NamedTuple):
    """The cap in force in one collection (None: no cap) and where it comes from."""

    limit: int | None
    source: CapSource


@dataclass
class AssemblyCaps:
    """Every cap setting of one SKU in one assembly."""

    default: int | None = None
    # each collection's own setting: a maximum, or None for an explicit "no maximum"
    overrides: dict[str, int | None] = field(default_factory=dict)

    def effective(self, collection: str) -> EffectiveCap:
        """The collection's own setting if any, else the assembly default, else none."""
        if collection in self.overrides:
            return EffectiveCap(self.overrides[collection], CapSource.COLLECTION)
        if self.default is not None:
            return EffectiveCap(self.default, CapSource.ASSEMBLY)
        return EffectiveCap(None, CapSource.NONE)

    def set_collection(self, collection: str, limit: int | None) -> None:
        """Cap one collection only (`limit=None`: "no maximum for this collection", even under a default)."""
        self.overrides[collection] = limit

    def set_all(self, limit: int | None) -> None:
        """Apply to all collections of the assembly: the default, and every per-collection setting cleared.

        The seed's "BE AWARE, this also affects the ongoing collections": overrides of ongoing collections go too.
        `limit=None` removes the default: no cap anywhere in the assembly.
        """
        self.default = limit
        self.overrides.clear()


def channel_ats(sku_ats: int, cap: int | None, ordered: int) -> int:
    """max(0, min(ATS of the SKU, cap - units already ordered in the collection)); no cap: max(0, ATS)."""
    if cap is None:
        return max(0, sku_ats)
    return max(0, min(sku_ats, cap - ordered))


@dataclass(frozen=True)
class CapShortage(Shortage):
    """One line asking a collection for more than its cap leaves room for: `available` is the collection's channel
    ATS, under the `cap` with `ordered` units already ordered in it."""

    cap: int
    ordered: int


@dataclass(eq=False)
class CapReached(Refusal):
    """A placement in a collection beyond what its cap leaves."""

    code = "cap_reached"
    order_id: str
    assembly: str
    collection: str
    shortages: tuple[CapShortage, ...]

    def message(self) -> str:
        parts = "; ".join(
            f"SKU {s.sku} wants {s.requested}, {s.available} available (cap {s.cap}, {s.ordered} already ordered)"
            for s in self.shortages
        )
        return (
            f"order {self.order_id} refused, the cap of collection {self.collection} "
            f"in assembly {self.assembly} is reached: {parts}"
        )


def check_channel_placement(
    order_id: str,
    assembly: str,
    collection: str,
    lines: Mapping[str, int],
    sku_ats: Mapping[str, int],
    caps: Mapping[str, EffectiveCap],
    ordered: Mapping[str, int],
) -> None:
    """Refuse the order when a line exceeds its collection's channel ATS because of the cap.

    Lines short of the SKU's own ATS are refused by `allocation.check_placement`, which runs first.
    """
    shortages = []
    for sku, quantity in sorted(lines.items()):
        cap = caps[sku].limit
        if cap is None:
            continue
        already = ordered.get(sku, 0)
        room = channel_ats(sku_ats.get(sku, 0), cap, already)
        if quantity > room:
            shortages.append(CapShortage(sku, quantity, room, cap, already))
    if shortages:
        raise CapReached(order_id, assembly, collection, tuple(shortages))
