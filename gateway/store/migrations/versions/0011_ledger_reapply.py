"""Re-applying an item on purpose: a ledger entry may name the entry whose content it applied again
(`reapply_of`), and such an entry does not claim the content (the unique index on applied content leaves it out);
the latest entry of a partner and kind (the content in force, which a duplicate is compared with) found by an index.

Revision ID: 0011
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
# numbered 0011 to leave 0008-0010 to work landing beside it; chained after whichever of them is the head then
down_revision = "0007"


def upgrade() -> None:
    op.add_column("ingest_ledger", sa.Column("reapply_of", sa.Integer, nullable=True))
    op.drop_index("ux_ingest_ledger_applied", table_name="ingest_ledger")
    op.create_index(
        "ux_ingest_ledger_applied",
        "ingest_ledger",
        ["partner_id", "kind", "sha256"],
        unique=True,
        sqlite_where=sa.text("outcome = 'applied' AND reapply_of IS NULL"),
        postgresql_where=sa.text("outcome = 'applied' AND reapply_of IS NULL"),
    )
    op.create_index("ix_ingest_ledger_kind", "ingest_ledger", ["partner_id", "kind", "id"])
