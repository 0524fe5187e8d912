"""Dated supply: the receipts of each SKU's supply schedule (units that exist from a date on, `available_from`).

A SKU's supply is its on-hand level (the `stock` row, as before) plus these receipts; a snapshot replaces both
together, in one transaction, under the stale rule of the stock row's `as_of`. A partner that sends no dates has
no row here.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.create_table(
        "supply_receipts",
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("available_from", sa.Date, nullable=False),
        sa.Column("units", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "sku", "available_from"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
    )
