"""A store already at the head is told by reading its version table against a constant, without Alembic: the
constant must be Alembic's own head, or every command would migrate (or refuse) a store it should just read."""

from __future__ import annotations

from gateway.store.sql import engine


def test_the_head_constant_is_alembics_head_revision() -> None:
    """engine.HEAD names the newest migration under gateway/store/migrations/versions."""
    assert engine.head_revision() == engine.HEAD
