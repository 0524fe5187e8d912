"""Shared test helpers: a controllable clock, configurations written to real files, apps on real stores.

A module (or test) marked `both_stores` runs every test that uses `make_app` or `store_url` twice: on a SQLite
file and on the PostgreSQL server named by GATEWAY_TEST_POSTGRES_URL, each PostgreSQL test in a schema of its own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy

from gateway import bootstrap, settings
from gateway.domain import instant
from gateway.logs import configure

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
POSTGRES_ENV = "GATEWAY_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_stores` (and not `sqlite_only`) that use a store run on SQLite and on PostgreSQL."""
    if (
        "store_backend" in metafunc.fixturenames
        and metafunc.definition.get_closest_marker("both_stores") is not None
        and metafunc.definition.get_closest_marker("sqlite_only") is None
    ):
        metafunc.parametrize("store_backend", BACKENDS, indirect=True)


def postgres_base_url() -> str:
    """The PostgreSQL server of the tests; skipped without one, except in CI, where its absence fails the run."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set: CI runs the PostgreSQL tests, it never skips them")
        pytest.skip(f"{POSTGRES_ENV} is not set (make test sets it)")
    return url


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections work in a new, empty schema of their own; the schema is dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    admin = sqlalchemy.create_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {name}")
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options={quote(f'-csearch_path={name}')}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql("SET lock_timeout = '20s'")
            connection.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """ "sqlite" unless the test is parametrized over both backends (see pytest_generate_tests)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def store_url(store_backend: str, tmp_path: Path) -> Iterator[str]:
    """The store of the test: a SQLite file in tmp_path, or a fresh schema on the PostgreSQL server."""
    if store_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'gateway.db'}"
        return
    with postgres_schema(postgres_base_url()) as url:
        yield url


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: str = "2026-01-01T00:00:00+00:00") -> None:
        self.now = instant.parse(start)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float = 1.0) -> int:
        self.now += int(seconds * 1_000_000)
        return self.now

    def set(self, text: str) -> int:
        self.now = instant.parse(text)
        return self.now


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)


def write_config(folder: Path, partners: dict[str, dict[str, Any]], store_url: str | None = None) -> Path:
    """A configuration file in `folder` with these partners (nested dicts become sub-tables).

    A partner's "sources" is a list of dicts, each written as a `[[partners.NAME.sources]]` table.
    """
    lines = ["[store]", f"url = {toml_value(store_url or 'sqlite:///var/gateway.db')}", ""]
    for name, options in partners.items():
        lines.append(f"[partners.{name}]")
        tables: list[tuple[str, dict[str, Any]]] = []
        for key, value in options.items():
            if key == "files":  # a per-kind table each, and the keys of all kinds (max_line_bytes) in their own
                shared = {k: v for k, v in value.items() if not isinstance(v, dict)}
                tables.extend([(f"[partners.{name}.files]", shared)] if shared else [])
                tables.extend(
                    (f"[partners.{name}.files.{kind}]", opts) for kind, opts in value.items() if isinstance(opts, dict)
                )
            elif key == "sources":
                tables.extend((f"[[partners.{name}.sources]]", source) for source in value)
            else:
                lines.append(f"{key} = {toml_value(value)}")
        for header, table in tables:
            lines.append(header)
            lines.extend(f"{k} = {toml_value(v)}" for k, v in table.items())
        lines.append("")
    path = folder / "gateway.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


AppFactory = Callable[..., bootstrap.App]


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    configure("json", None, "error")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app(tmp_path: Path, clock: FakeClock, store_url: str) -> Iterator[AppFactory]:
    """Build an app on a fresh store (see store_url): make_app(acme={"stock_mode": "simple"}, ...)."""
    built: list[bootstrap.App] = []

    def factory(**partners: dict[str, Any]) -> bootstrap.App:
        path = write_config(tmp_path, partners, store_url)
        app = bootstrap.build(settings.load(path, environ={}), clock=clock)
        built.append(app)
        return app

    yield factory
    for app in built:
        app.close()


def at(text: str) -> int:
    """An instant from an ISO text (UTC when no offset)."""
    return instant.parse(text)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
