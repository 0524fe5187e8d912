"""The whole configuration and how it is read: a TOML file plus `GATEWAY_*` environment variables.

Paths in the file are relative to its folder; a problem anywhere is one line of the ConfigError, by key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from gateway.settings.base import ConfigError, Strict
from gateway.settings.partners import PartnerSettings
from gateway.settings.platform import PlatformApiSettings
from gateway.settings.retention import RetentionSettings
from gateway.settings.store import STORE_URL_ENV, StoreSettings, holds_password, resolve_store_url
from gateway.settings.worker import WorkerSettings

CONFIG_ENV = "GATEWAY_CONFIG"


class Settings(Strict):
    """The whole configuration."""

    # where inbound files are copied before they are applied (relative to the configuration file's folder)
    staging: Path = Path("var/staging")
    store: StoreSettings = StoreSettings()
    worker: WorkerSettings = WorkerSettings()
    api: PlatformApiSettings = PlatformApiSettings()
    retention: RetentionSettings = RetentionSettings()
    partners: dict[str, PartnerSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _tokens_name_partners(self) -> Self:
        for token in self.api.tokens:
            unknown = [p for p in token.partners if p != "*" and p not in self.partners]
            if unknown:
                raise ValueError(f"api.tokens.{token.name}: unknown partner(s) {', '.join(unknown)}")
        return self

    @field_validator("partners")
    @classmethod
    def _partner_names(cls, value: dict[str, PartnerSettings]) -> dict[str, PartnerSettings]:
        for name in value:
            if not name or not all(c.isalnum() or c in "-_" for c in name) or not name.isascii():
                raise ValueError(f"partner name {name!r}: use letters, digits, '-' and '_'")
        return value

    def partner(self, name: str) -> PartnerSettings:
        """The settings of partner `name`; ConfigError naming the known ones when there is none."""
        try:
            return self.partners[name]
        except KeyError:
            known = ", ".join(sorted(self.partners)) or "none"
            raise ConfigError([f"partners.{name}: no such partner in the configuration (known: {known})"]) from None


def _describe(error: Mapping[str, object]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")  # type: ignore[attr-defined]
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def config_path(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """The configuration file to read: `--config`, else GATEWAY_CONFIG."""
    chosen = explicit or environ.get(CONFIG_ENV)
    if not chosen:
        raise ConfigError([f"no configuration file: pass --config PATH or set {CONFIG_ENV}"])
    return Path(chosen)


def load(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration at `path`; ConfigError lists every problem by key."""
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such configuration file"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    override = environ.get(STORE_URL_ENV)
    if override:
        raw.setdefault("store", {})["url"] = override
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([_describe(error) for error in exc.errors()]) from None
    if not override and holds_password(settings.store.url):
        raise ConfigError(
            [
                "store.url: holds a password; name it with store.password_env or store.password_file "
                f"(or give the whole URL in {STORE_URL_ENV})"
            ]
        )
    base = path.resolve().parent
    url = resolve_store_url(settings.store.url, base)
    for partner in settings.partners.values():
        for source in partner.sources:
            _resolve_paths(source, base)
        if partner.export is not None:
            _resolve_paths(partner.export, base)
        if partner.api is not None:
            _resolve_paths(partner.api, base)
    for token in settings.api.tokens:
        _resolve_paths(token, base)
    staging = settings.staging if settings.staging.is_absolute() else (base / settings.staging).resolve()
    _resolve_paths(settings.store, base)
    items = settings.retention.items_path
    items = items if items.is_absolute() else (base / items).resolve()
    retention = settings.retention.model_copy(update={"items_path": items})  # never the shared default itself
    store = settings.store.model_copy(update={"url": url})
    return settings.model_copy(update={"store": store, "staging": staging, "retention": retention})


_PATH_FIELDS = (
    "path",
    "known_hosts",
    "password_file",
    "private_key_file",
    "token_file",
    "ca_file",
    "failed",
)


def _resolve_paths(section: BaseModel, base: Path) -> None:
    """Paths in the configuration are relative to its folder."""
    for field in _PATH_FIELDS:
        value = getattr(section, field, None)
        if isinstance(value, Path) and not value.is_absolute():
            object.__setattr__(section, field, (base / value).resolve())
