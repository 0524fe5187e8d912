"""The store's engine: opened on a URL with its dialect's pool and connection set-up, and its schema migrated.

Migrations are Alembic's (gateway/store/migrations): a store made by an older release is upgraded in place and
keeps its data; one upgraded by a newer release is refused rather than written in a schema this one does not know.

Alembic is imported only when the store is not at HEAD (a new, older or newer store): a store already at the head
is told by reading its version table, so a command's start does not pay for Alembic (HEAD is checked against
Alembic's own head by tests/unit/test_schema_head.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, make_url, text

from gateway.store.errors import StoreError
from gateway.store.sql import sqlite_writer
from gateway.store.sql.dialects import Dialect, Pool, dialect_class
from gateway.store.sql.errors import translate_errors
from gateway.store.sql.locks import LockSpace

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = "gateway.store:migrations"
HEAD = "0015"  # the newest revision under gateway/store/migrations/versions: change it with each new migration
_VERSION_TABLE = "alembic_version"  # where Alembic keeps a store's revision (its default)


def _migrations_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config  # noqa: PLC0415 - see the module's docstring

    config = Config()
    config.set_main_option("script_location", _MIGRATIONS)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The schema revision this release writes, as Alembic finds it among the migrations."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - see the module's docstring

    head = ScriptDirectory.from_config(_migrations_config()).get_current_head()
    assert head is not None
    return head


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - see the module's docstring

    return {script.revision for script in ScriptDirectory.from_config(_migrations_config()).walk_revisions()}


def open_engine(url: str, pool: Pool) -> tuple[Engine, Dialect]:
    """An engine on the store at `url` (connections set up as its database needs, `pool` on PostgreSQL), and its
    dialect object."""
    parsed = make_url(url)
    kind = dialect_class(parsed.get_backend_name())
    engine = kind.create_engine(parsed, pool)
    return engine, kind(engine.dialect)


def revision(engine: Engine) -> str | None:
    """The schema revision the store is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 - see the module's docstring

    with sqlite_writer.reading(engine.connect()) as connection, connection.begin():
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine, dialect: Dialect, space: LockSpace, target: str = "head") -> None:
    """Upgrade the schema in place to revision `target` (a store made by an older release keeps its data).

    A store already at the head is only read: a command never queues behind a worker's write for nothing."""
    with translate_errors(failing="the store's schema cannot be brought up to date"):
        if target == "head" and _stamped(engine) == [HEAD]:
            return
        from alembic import command  # noqa: PLC0415 - see the module's docstring

        current = revision(engine)
        if target == "head" and current == head_revision():
            return
        if current is not None and current not in _known_revisions():
            raise StoreError(
                f"the store is at schema revision {current}, which this release does not know: a newer release "
                "upgraded it; run that release (or a later one) against this store"
            )
        with engine.begin() as connection:
            dialect.locks(connection, space).migrating()
            command.upgrade(_migrations_config(connection), target)


def _stamped(engine: Engine) -> list[str] | None:
    """The revisions the store's version table holds (None without the table), read without Alembic."""
    with sqlite_writer.reading(engine.connect()) as connection, connection.begin():
        if not inspect(connection).has_table(_VERSION_TABLE):
            return None
        return [str(row[0]) for row in connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}"))]
