"""Caps per assembly and collection, and the channels whose ATS is published.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "caps",
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("assembly", sa.String(128), nullable=False),
        sa.Column("collection", sa.String(128), nullable=False),
        sa.Column("max_units", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "sku", "assembly", "collection"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "channels",
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("assembly", sa.String(128), nullable=False),
        sa.Column("collection", sa.String(128), nullable=False),
        sa.Column("ordered", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("published", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("partner_id", "sku", "assembly", "collection"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
        sqlite_with_rowid=False,
    )
