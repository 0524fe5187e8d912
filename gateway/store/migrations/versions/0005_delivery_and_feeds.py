"""Outbox delivery (batches, claims, the last answer) and the cursors of polled partner feeds.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.add_column(sa.Column("breaker_open_until", sa.BigInteger, nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("last_status", sa.Integer, nullable=True))
        batch.add_column(sa.Column("run_id", sa.String(32), nullable=True))
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["partner_id", "kind", "id"],
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "feed_cursors",
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("feed", sa.String(64), nullable=False),
        sa.Column("cursor", sa.Text, nullable=True),
        sa.Column("last_sha256", sa.String(64), nullable=True),
        sa.Column("ledger_id", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "feed"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
    )
