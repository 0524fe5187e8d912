"""Retention: the sha256 of applied content whose ledger entry was removed after `retention.ledger_days`, kept for
`retention.dedupe_days` so that the same content delivered again is still recognised as a duplicate (and its
report names the entry it repeats).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "ledger_digests",
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("ledger_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "ledger_id"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
    )
    op.create_index("ux_ledger_digests_content", "ledger_digests", ["partner_id", "kind", "sha256"], unique=True)
