"""The ledger repository on SQL: every inbound item and what became of it, and the store's side of source files
that keep failing (their transport failures, quarantine and release)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, func, or_, select, true, update

from gateway import logs
from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.domain.outcomes import Outcome
from gateway.store import schema
from gateway.store.errors import AlreadyApplied
from gateway.store.records import Inbound, LedgerCounts, LedgerRecord, LedgerTally, TransportFailures
from gateway.store.sql.errors import translate_errors
from gateway.store.sql.repository import SqlRepository, with_partner

_G = schema.ingest_ledger
_IN_FORCE = (Outcome.APPLIED.value, Outcome.BUNDLED.value)  # content that applied: alone, or in a bundle
_T = schema.transport_failures
_D = schema.ledger_digests
_X = schema.outbox
HOUR = 3_600_000_000  # microseconds


class SqlLedger(SqlRepository):
    """The port's LedgerRepository: ledger entries, and transport failures per source file (name, size and time)."""

    def applied(self, partner_id: int, kind: str, sha256: str, outcome: Outcome = Outcome.APPLIED) -> int | None:
        """The entry that already applied this content for this partner and kind (or the first with `outcome`); once
        retention removed it, the id it had, from the digests kept for `retention.dedupe_days`."""
        # the claim of applied content, not a re-apply on purpose: the unique index's own condition, which it serves
        claims = _G.c.reapply_of.is_(None) if outcome == Outcome.APPLIED else true()
        found = self.connection.execute(
            select(_G.c.id)
            .where(
                _G.c.partner_id == partner_id,
                _G.c.kind == kind,
                _G.c.sha256 == sha256,
                _G.c.outcome == outcome,
                claims,
            )
            .order_by(_G.c.id)
            .limit(1)
        ).scalar_one_or_none()
        if found is None and outcome in _IN_FORCE:  # its entry removed by retention: its digest, while kept
            found = self.connection.execute(
                select(_D.c.ledger_id).where(_D.c.partner_id == partner_id, _D.c.kind == kind, _D.c.sha256 == sha256)
            ).scalar_one_or_none()
        return None if found is None else int(found)

    def open(self, item: Inbound, outcome: Outcome = Outcome.APPLIED) -> int:
        """The unique index on applied content turns a second claim into AlreadyApplied (a re-apply on purpose,
        naming the entry it applies again, claims nothing)."""
        taken = f"{item.kind} content {item.sha256} was applied already"
        with translate_errors(conflict=lambda _: AlreadyApplied(taken)):
            # the item's run_id: the transaction's, else the one bound to the log lines of the block (a rejection or
            # a quarantine is recorded in a transaction of its own, inside the item's run)
            run_id = self.shared.run_id or logs.current_run()
            values = {**asdict(item), "outcome": outcome, "run_id": run_id}
            key = self.connection.execute(_G.insert().values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def close(
        self, entry_id: int, outcome: Outcome, counts: LedgerCounts, error: str | None, report: str | None, now: Instant
    ) -> None:
        """Record the item's outcome and counts."""
        self.connection.execute(
            update(_G)
            .where(_G.c.id == entry_id)
            .values(
                outcome=outcome,
                rows_applied=counts.applied,
                rows_skipped=counts.skipped,
                rows_refused=counts.refused,
                error=error,
                report=report,
                finished_at=now,
            )
        )

    def since(self, partner_id: int, since: Instant) -> list[LedgerTally]:
        """One GROUP BY kind and outcome."""
        query = (
            select(
                _G.c.kind,
                _G.c.outcome,
                func.count(),
                func.coalesce(func.sum(_G.c.rows_applied), 0),
                func.coalesce(func.sum(_G.c.rows_refused), 0),
            )
            .where(_G.c.partner_id == partner_id, _G.c.received_at >= since)
            .group_by(_G.c.kind, _G.c.outcome)
            .order_by(_G.c.kind, _G.c.outcome)
        )
        return [
            LedgerTally(r[0], Outcome(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in self.connection.execute(query)
        ]

    def entries(self, partner_id: int, limit: int = 100) -> list[LedgerRecord]:
        """The latest entries of the partner, newest first."""
        query = with_partner(_G).where(_G.c.partner_id == partner_id).order_by(_G.c.id.desc()).limit(limit)
        return [_record(row) for row in self.connection.execute(query)]

    def find(self, partner_id: int, text: str, limit: int = 100) -> list[LedgerRecord]:
        """A LIKE on the source (its wildcards taken literally), an equality on the digest or on the entry's run_id,
        and the entries of the outbox rows of the run (entries made before 0012 kept no run_id; their messages did)."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        of_run = select(_X.c.ledger_id).where(_X.c.partner_id == partner_id, _X.c.run_id == text)
        query = (
            with_partner(_G)
            .where(
                _G.c.partner_id == partner_id,
                or_(
                    _G.c.source.ilike(pattern, escape="\\"),
                    _G.c.sha256 == text.lower(),
                    _G.c.run_id == text,
                    _G.c.id.in_(of_run),
                ),
            )
            .order_by(_G.c.id.desc())
            .limit(limit)
        )
        return [_record(row) for row in self.connection.execute(query)]

    def hourly(self, partner_id: int, since: Instant) -> dict[int, int]:
        """One GROUP BY on the hour, counted from `since` (integer division on both databases)."""
        hour = ((_G.c.received_at - since) // HOUR).label("hour")
        query = (
            select(hour, func.count()).where(_G.c.partner_id == partner_id, _G.c.received_at >= since).group_by(hour)
        )
        return {int(h): int(n) for h, n in self.connection.execute(query)}

    def entry(self, partner_id: int, ledger_id: int) -> LedgerRecord | None:
        """The partner's entry `ledger_id`, if it has one."""
        row = self.connection.execute(
            with_partner(_G).where(_G.c.partner_id == partner_id, _G.c.id == ledger_id)
        ).one_or_none()
        return None if row is None else _record(row)

    def in_force(self, partner_id: int, kind: str) -> tuple[int, str] | None:
        """(id, sha256) of the latest applied entry of the partner and kind (alone or as a bundle's member)."""
        row = self.connection.execute(
            select(_G.c.id, _G.c.sha256)
            .where(_G.c.partner_id == partner_id, _G.c.kind == kind, _G.c.outcome.in_(_IN_FORCE))
            .order_by(_G.c.id.desc())
            .limit(1)
        ).one_or_none()
        if row is None:  # every entry of the kind removed by retention: the latest digest kept, if any
            row = self.connection.execute(
                select(_D.c.ledger_id.label("id"), _D.c.sha256)
                .where(_D.c.partner_id == partner_id, _D.c.kind == kind)
                .order_by(_D.c.ledger_id.desc())
                .limit(1)
            ).one_or_none()
        return None if row is None else (int(row.id), str(row.sha256))

    # transport failures of source files, and the quarantine they lead to

    def _where(self, partner_id: int, source: str, identity: str) -> Any:
        return (_T.c.partner_id == partner_id) & (_T.c.source == source) & (_T.c.identity == identity)

    def transport_failed(
        self, partner_id: int, source: str, identity: str, error: str, now: Instant
    ) -> TransportFailures:
        """One upsert on the file's row: the first failure sets `first_failed_at`, each later one counts."""
        insert = self.dialect.insert(_T)
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
        """The file's failure row keeps when it was quarantined and under which entry."""
        self.connection.execute(
            update(_T).where(self._where(partner_id, source, identity)).values(quarantined_at=now, ledger_id=ledger_id)
        )

    def quarantined(self, partner_id: int, source: str) -> set[str]:
        """The source's failure rows with a quarantine time."""
        query = select(_T.c.identity).where(
            _T.c.partner_id == partner_id, _T.c.source == source, _T.c.quarantined_at.is_not(None)
        )
        return set(self.connection.execute(query).scalars())

    def transport_recovered(self, partner_id: int, source: str, identity: str) -> None:
        """The file's failure row goes."""
        self.connection.execute(delete(_T).where(self._where(partner_id, source, identity)))

    def release(self, partner_id: int, ledger_id: int, now: Instant) -> bool:
        """The quarantined file's failure row goes; its entry's error notes when it was released."""
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
            .values(outcome=Outcome.RELEASED.value, error=func.coalesce(_G.c.error, "") + note)
        )
        return True


def _record(row: Any) -> LedgerRecord:
    """A ledger row read through `with_partner` as the port's record (its outcome read back as a member)."""
    return LedgerRecord(**{**row._mapping, "outcome": Outcome(row.outcome)})
