"""Partners, stock levels, orders, order lines and confirmations.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("stock_mode", sa.String(20), nullable=False),
        sa.Column("pending_allocation", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "stock",
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("as_of", sa.BigInteger, nullable=True),
        sa.Column("allocated", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("published", sa.BigInteger, nullable=True),
        sa.Column("last_moved_at", sa.BigInteger, nullable=True),
        sa.Column("set_by", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "sku"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "orders",
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "order_id"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
    )
    op.create_table(
        "order_lines",
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("confirmed_quantity", sa.BigInteger, nullable=True),
        sa.Column("confirmed_at", sa.BigInteger, nullable=True),
        sa.Column("assembly", sa.String(128), nullable=True),
        sa.Column("collection", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("partner_id", "order_id", "sku"),
        sa.ForeignKeyConstraint(["partner_id", "order_id"], ["orders.partner_id", "orders.order_id"]),
    )
    op.create_index("ix_order_lines_partner_sku", "order_lines", ["partner_id", "sku"])
    op.create_table(
        "confirmations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("partner_id", sa.Integer, nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("confirmed_quantity", sa.BigInteger, nullable=False),
        sa.Column("confirmed_at", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("in_force", sa.Boolean, nullable=False),
        sa.ForeignKeyConstraint(["partner_id", "order_id"], ["orders.partner_id", "orders.order_id"]),
    )
    op.create_index("ix_confirmations_order", "confirmations", ["partner_id", "order_id", "sku"])
