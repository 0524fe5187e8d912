"""The ingest ledger (what was received and what became of it) and the outbox (what partners are owed).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "ingest_ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("rows_applied", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("rows_skipped", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("rows_refused", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("report", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
    )
    op.create_index(
        "ux_ingest_ledger_applied",
        "ingest_ledger",
        ["partner_id", "kind", "sha256"],
        unique=True,
        sqlite_where=sa.text("outcome = 'applied'"),
        postgresql_where=sa.text("outcome = 'applied'"),
    )
    op.create_index("ix_ingest_ledger_received", "ingest_ledger", ["partner_id", "received_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=True),
        sa.Column("as_of", sa.BigInteger, nullable=True),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("ledger_id", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered_at", sa.BigInteger, nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
    )
    op.create_index(
        "ux_outbox_pending_key",
        "outbox",
        ["partner_id", "kind", "key"],
        unique=True,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
