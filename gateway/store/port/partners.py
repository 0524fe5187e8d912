"""The partners a store knows: their ids, their policies, and their delivery breakers."""

from __future__ import annotations

from typing import Protocol

from gateway.domain.instant import Instant
from gateway.domain.modes import Policy


class PartnerRepository(Protocol):
    """Registered partners. Every other repository names a partner by the id this one gives."""

    def id_of(self, name: str) -> int:
        """The store id of partner `name` (registered by `sync_partner`).

        Raises StoreError when the partner is not registered."""
        ...

    def sync(self, name: str, policy: Policy, now: Instant) -> tuple[int, bool]:
        """Register partner `name` with `policy`; return its id and whether its policy changed.

        Workers starting together register a new partner once (they queue for it on PostgreSQL)."""
        ...

    def policies(self) -> dict[str, tuple[str, bool]]:
        """Every registered partner's (stock mode, pending allocation)."""
        ...

    def breaker_open_until(self, partner_id: int) -> Instant | None:
        """Until when the partner's delivery breaker is open, if it is."""
        ...

    def set_breaker(self, partner_id: int, open_until: Instant | None) -> None:
        """Open the partner's delivery breaker until then (None: close it)."""
        ...
