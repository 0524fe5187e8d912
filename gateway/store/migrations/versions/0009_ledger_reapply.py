"""Re-applying an item on purpose: a ledger entry may name the entry whose content it applied again
(`reapply_of`), and such an entry does not claim the content (the unique index on applied content leaves it out);
the latest entry of a partner and kind (the content in force, which a duplicate is compared with) found by an index.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


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
