"""Shared test helpers: a controllable clock, configurations written to real files, apps on real SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway import bootstrap, settings
from gateway.domain import instant
from gateway.logs import configure

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


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
            if key == "files":
                tables.extend((f"[partners.{name}.files.{kind}]", opts) for kind, opts in value.items())
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
def make_app(tmp_path: Path, clock: FakeClock) -> Iterator[AppFactory]:
    """Build an app on a fresh SQLite file: make_app(acme={"stock_mode": "simple"}, ...)."""
    built: list[bootstrap.App] = []

    def factory(**partners: dict[str, Any]) -> bootstrap.App:
        path = write_config(tmp_path, partners)
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
