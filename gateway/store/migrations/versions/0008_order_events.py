"""Orders can be read: each status an order reached, when and what moved it; and an index to list orders by status.

An order placed before this revision has no history: it starts with the status it has, at the instant it reached
it (its updated_at), moved by nothing known (no ledger entry, no command).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("ledger_id", sa.BigInteger, nullable=True),
        sa.Column("command", sa.String(16), nullable=True),
        sa.ForeignKeyConstraint(["partner_id", "order_id"], ["orders.partner_id", "orders.order_id"]),
    )
    op.create_index("ix_order_events_order", "order_events", ["partner_id", "order_id", "id"])
    op.create_index("ix_orders_partner_status", "orders", ["partner_id", "status", "updated_at"])
    op.execute(
        "INSERT INTO order_events (partner_id, order_id, status, at)"
        " SELECT partner_id, order_id, status, updated_at FROM orders ORDER BY partner_id, updated_at, order_id"
    )
