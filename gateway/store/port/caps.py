"""A partner's caps (how many units each collection of an assembly may sell) and the channels they make."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.domain.caps import AssemblyCaps
from gateway.domain.instant import Instant
from gateway.store.records import CapRow, ChannelRecord


class CapRepository(Protocol):
    """Cap settings by (sku, assembly, collection), and the channels (units ordered, ATS published) they govern."""

    def get(self, partner_id: int, skus: Sequence[str]) -> dict[tuple[str, str], AssemblyCaps]:
        """The cap settings of the given SKUs, by (sku, assembly)."""
        ...

    def put(self, partner_id: int, sku: str, assembly: str, settings: AssemblyCaps, now: Instant) -> None:
        """Replace every cap setting of one SKU in one assembly."""
        ...

    def rows(self, partner_id: int, sku: str | None = None, assembly: str | None = None) -> list[CapRow]:
        """Stored cap settings, by SKU, assembly and collection ("*" first)."""
        ...

    def holds_channels(self, partner_id: int) -> bool:
        """Whether the partner has any channel (a cap or an order in a collection)."""
        ...

    def channels(self, partner_id: int, skus: Sequence[str]) -> list[ChannelRecord]:
        """The channels of the given SKUs (by SKU, assembly, collection)."""
        ...

    def put_channels(self, partner_id: int, records: Sequence[ChannelRecord]) -> None:
        """Insert or replace these channels."""
        ...
