"""The run_id of each ledger entry: the id bound to the log lines of the item's handling, so that an entry is found
by it (the console's search, `grep RUN_ID` from a log line to the ledger), a rejected item's included. Entries made
before keep none.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.add_column("ingest_ledger", sa.Column("run_id", sa.String(32), nullable=True))
    op.create_index("ix_ingest_ledger_run", "ingest_ledger", ["partner_id", "run_id"])
