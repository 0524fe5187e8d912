"""When a source file first failed (quarantine needs its failures to span a while), and the ledger entry of its
quarantine (what `gateway ledger release` names).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.add_column("transport_failures", sa.Column("first_failed_at", sa.BigInteger, nullable=True))
    op.add_column("transport_failures", sa.Column("ledger_id", sa.Integer, nullable=True))
    # what is there already: failing since its last failure at the latest; a quarantined file's entry is the
    # `quarantined` one the same pass wrote for it (same partner, same instant, the source's label)
    op.execute("UPDATE transport_failures SET first_failed_at = updated_at")
    op.execute(
        "UPDATE transport_failures SET ledger_id = ("
        " SELECT max(g.id) FROM ingest_ledger g"
        " WHERE g.partner_id = transport_failures.partner_id AND g.outcome = 'quarantined'"
        " AND g.received_at = transport_failures.quarantined_at"
        " AND g.source LIKE transport_failures.source || ':%')"
        " WHERE quarantined_at IS NOT NULL"
    )
