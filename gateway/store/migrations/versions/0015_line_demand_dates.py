"""Dated demand: the date each order line is demand for (its collection's pickup date, else the order's
`wanted_on`; NULL: demand today), and per (partner, SKU, date) the units the dated lines of open orders allocate,
kept in the same transaction as the lines' allocations, so a placement reads a SKU's dates, not its lines.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.add_column("order_lines", sa.Column("demand_on", sa.Date, nullable=True))
    op.create_table(
        "dated_demand",
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("demand_on", sa.Date, nullable=False),
        sa.Column("units", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "sku", "demand_on"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
        sqlite_with_rowid=False,
    )
