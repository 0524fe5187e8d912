"""Dated collections: a collection's window (opens_at, closes_at) and its pickup date, per partner, assembly and
collection. A collection without a row has no dates: it is open at any time, and its lines are demand today.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    op.create_table(
        "collection_dates",
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("assembly", sa.String(128), nullable=False),
        sa.Column("collection", sa.String(128), nullable=False),
        sa.Column("opens_at", sa.BigInteger, nullable=True),
        sa.Column("closes_at", sa.BigInteger, nullable=True),
        sa.Column("pickup_on", sa.Date, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "assembly", "collection"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
        sqlite_with_rowid=False,
    )
