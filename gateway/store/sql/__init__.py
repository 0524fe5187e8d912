"""The store on SQLAlchemy Core (SQLite and PostgreSQL): the port's Store and UnitOfWork, one module per part.

store.py holds SqlStore (the unit of work: write, read, source locks); unit_of_work.py SqlUnitOfWork, which holds
one repository per aggregate (stock.py, orders.py, caps.py, outbox.py and delivery.py, ledger.py, feeds.py,
partners.py, requests.py, on repository.py's shared base); engine.py opens the engine and migrates the schema;
dialects.py holds what differs between SQLite and PostgreSQL; locks.py and outbox_locks.py the locks of a shared
store; statements.py the SQL of the bulk paths and of the advisory locks; levels.py (with snapshot_copy.py) loads a
snapshot into PostgreSQL, with level_statements.py's SQL; errors.py turns driver errors into the store's.
"""

from __future__ import annotations

from gateway.store.sql.engine import head_revision
from gateway.store.sql.locks import lock_key
from gateway.store.sql.store import SqlStore
from gateway.store.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlStore", "SqlUnitOfWork", "head_revision", "lock_key"]
