"""The store's side of source files that keep failing: their transport failures, quarantine and release.

A mixin of SqlTransaction (it works on the transaction's connection); kept apart from the other repositories.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.store import schema
from gateway.store.port import TransportFailures

_T = schema.transport_failures
_G = schema.ingest_ledger


class TransportFailureStatements:
    """Transport failures per source file (name, size and time), and the quarantine they lead to."""

    connection: Connection

    def _where(self, partner_id: int, source: str, identity: str) -> Any:
        return (_T.c.partner_id == partner_id) & (_T.c.source == source) & (_T.c.identity == identity)

    def transport_failed(
        self, partner_id: int, source: str, identity: str, error: str, now: Instant
    ) -> TransportFailures:
        """Count one more transport failure of a source file; return how many it has had, and since when."""
        insert = postgresql.insert(_T) if self.connection.dialect.name == "postgresql" else sqlite.insert(_T)
        statement = insert.on_conflict_do_update(
            index_elements=[_T.c.partner_id, _T.c.source, _T.c.identity],
            set_={"failures": _T.c.failures + 1, "last_error": error, "updated_at": now},
        )
        self.connection.execute(
            statement,
            {
                "partner_id": partner_id,
                "source": source,
                "identity": identity,
                "failures": 1,
                "last_error": error,
                "updated_at": now,
                "first_failed_at": now,
            },
        )
        count, first = self.connection.execute(
            select(_T.c.failures, _T.c.first_failed_at).where(self._where(partner_id, source, identity))
        ).one()
        return TransportFailures(int(count), int(first if first is not None else now))

    def quarantine(self, partner_id: int, source: str, identity: str, now: Instant, ledger_id: int) -> None:
        """Stop retrying a source file; `ledger_id` is the `quarantined` ledger entry that says so."""
        self.connection.execute(
            update(_T).where(self._where(partner_id, source, identity)).values(quarantined_at=now, ledger_id=ledger_id)
        )

    def quarantined(self, partner_id: int, source: str) -> set[str]:
        """Identities of the source's quarantined files."""
        query = select(_T.c.identity).where(
            _T.c.partner_id == partner_id, _T.c.source == source, _T.c.quarantined_at.is_not(None)
        )
        return set(self.connection.execute(query).scalars())

    def transport_recovered(self, partner_id: int, source: str, identity: str) -> None:
        """Forget a source file's transport failures."""
        self.connection.execute(delete(_T).where(self._where(partner_id, source, identity)))

    def release(self, partner_id: int, ledger_id: int, now: Instant) -> bool:
        """Put the file quarantined under ledger entry `ledger_id` back in line: its failures are forgotten and
        the entry's outcome becomes `released`. False when the entry is no quarantined file of the partner."""
        gone = self.connection.execute(
            delete(_T).where(
                _T.c.partner_id == partner_id, _T.c.ledger_id == ledger_id, _T.c.quarantined_at.is_not(None)
            )
        ).rowcount
        if not gone:
            return False
        note = f"; released at {instant.to_iso(now)}"
        self.connection.execute(
            update(_G)
            .where(_G.c.id == ledger_id, _G.c.partner_id == partner_id)
            .values(outcome="released", error=func.coalesce(_G.c.error, "") + note)
        )
        return True
