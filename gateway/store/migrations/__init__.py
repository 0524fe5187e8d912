"""Alembic migrations: each release's schema change, applied in place by `Store.open`."""
