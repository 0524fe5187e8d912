"""Typed, validated configuration: a TOML file plus `GATEWAY_*` environment variables.

Nothing here runs at import. `load()` reads the file named by `--config` or `GATEWAY_CONFIG`; a bad file
raises ConfigError listing every problem by key. Secrets are never values in this file: later sources name
an environment variable or a file that holds them.

One module per thing configured: `files` (a partner's file formats and columns), `sources` (folder and SFTP
sources, the SFTP connection), `partners` (a partner, its API, delivery and export), `platform` ([api] and its
tokens), `retention` (how long what the gateway writes is kept), `store`, `worker`, and `load` (the whole `Settings`,
`load()` and the environment). Every name is importable from `gateway.settings` itself.
"""

from __future__ import annotations

from gateway.domain.messages import MessageKind
from gateway.formats.pages import Feed
from gateway.formats.rows import Kind
from gateway.settings.base import ConfigError
from gateway.settings.files import (
    AcknowledgementColumns,
    AcknowledgementFileSettings,
    CapColumns,
    CapFileSettings,
    ConfirmationColumns,
    ConfirmationFileSettings,
    OrderColumns,
    OrderFileSettings,
    PartnerFiles,
    StockColumns,
    StockFileSettings,
)
from gateway.settings.load import CONFIG_ENV, Settings, config_path, load
from gateway.settings.partners import (
    FEEDS,
    MESSAGE_KINDS,
    ApiSettings,
    DeliverySettings,
    Export,
    FolderExport,
    PartnerSettings,
    SftpExport,
)
from gateway.settings.platform import NO_TOKENS, ApiToken, PlatformApiSettings
from gateway.settings.retention import RetentionSettings
from gateway.settings.sources import FolderSource, SftpConnection, SftpSource, Source
from gateway.settings.store import DEFAULT_STORE_URL, STORE_URL_ENV, StoreSettings, resolve_store_url
from gateway.settings.worker import WorkerSettings

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_STORE_URL",
    "FEEDS",
    "MESSAGE_KINDS",
    "NO_TOKENS",
    "STORE_URL_ENV",
    "AcknowledgementColumns",
    "AcknowledgementFileSettings",
    "ApiSettings",
    "ApiToken",
    "CapColumns",
    "CapFileSettings",
    "ConfigError",
    "ConfirmationColumns",
    "ConfirmationFileSettings",
    "DeliverySettings",
    "Export",
    "Feed",
    "FolderExport",
    "FolderSource",
    "Kind",
    "MessageKind",
    "OrderColumns",
    "OrderFileSettings",
    "PartnerFiles",
    "PartnerSettings",
    "PlatformApiSettings",
    "RetentionSettings",
    "Settings",
    "SftpConnection",
    "SftpExport",
    "SftpSource",
    "Source",
    "StockColumns",
    "StockFileSettings",
    "StoreSettings",
    "WorkerSettings",
    "config_path",
    "load",
    "resolve_store_url",
]
