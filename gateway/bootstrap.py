"""The one composition root: builds the store and the use cases from settings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.domain.messages import MessageKind
from gateway.secrets import SecretError, read_secret
from gateway.service import partners
from gateway.service.commands import Commands
from gateway.service.feeds import FeedPoller
from gateway.service.ingest import Clock, Ingestor
from gateway.service.pickup import Pickup
from gateway.service.publish import ApiSender, FileExportSender, Outbound, Publisher, Sender, Sleep, routes
from gateway.settings import FolderExport, FolderSource, Settings, SftpExport, SftpSource, StoreSettings
from gateway.store.port import StoreError
from gateway.store.sql import SqlStore
from gateway.transport import folder, sftp
from gateway.transport.http import ApiConfigError, PartnerApi, load_adapter
from gateway.transport.inbox import Inbox


def system_clock() -> Instant:
    """Now, as an instant."""
    return instant.from_datetime(datetime.now(UTC))


@dataclass
class App:
    """Everything a command or the worker needs, built once."""

    settings: Settings
    store: SqlStore
    clock: Clock
    ingestor: Ingestor
    commands: Commands
    pickup: Pickup
    apis: Apis  # delivery's adapters (one requests Session per partner)
    feed_apis: Apis  # polling's own, so a poll and a delivery never share a Session across threads
    feeds: FeedPoller
    publisher: Publisher

    def close(self) -> None:
        """Release the partners' connections and the store."""
        self.apis.close()
        self.feed_apis.close()
        self.store.close()


@dataclass
class Apis:
    """The partners' API adapters, made on first use (one requests Session each) and closed with the app."""

    settings: Settings
    made: dict[str, PartnerApi] = field(default_factory=dict)

    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, partner: str) -> PartnerApi:
        with self.lock:
            found = self.made.get(partner)
            if found is None:
                config = self.settings.partner(partner).api
                if config is None:
                    raise ApiConfigError(f"partners.{partner}.api: the partner has no API configured")
                found = self.made[partner] = load_adapter(partner, config)
            return found

    def close(self) -> None:
        """Close every session."""
        for api in self.made.values():
            api.close()
        self.made.clear()


def open_outbound(export: FolderExport | SftpExport) -> Callable[[], Outbound]:
    """How to reach the partner's export folder: a local folder, or an SFTP connection per delivery."""
    if isinstance(export, FolderExport):
        return lambda: folder.FolderOutbound(export.path)
    return lambda: sftp.SftpOutbound(export)


def senders(settings: Settings, apis: Apis) -> Callable[[str], dict[MessageKind, Sender]]:
    """Each partner's route per kind of message."""

    def make(partner: str) -> dict[MessageKind, Sender]:
        config = settings.partner(partner)
        found: dict[MessageKind, Sender] = {}
        for kind, route in routes(config).items():
            if route == "file" and config.export is not None:
                found[kind] = FileExportSender(partner, config.export.delimiter, open_outbound(config.export))
            else:
                found[kind] = ApiSender(lambda: apis(partner))
        return found

    return make


def open_store(config: StoreSettings, *, migrate: bool = True) -> SqlStore:
    """The store the configuration names, its password read from the environment or a file."""
    try:
        password = read_secret(config.password_env, config.password_file, "the store's password")
    except SecretError as exc:
        raise StoreError(str(exc)) from exc
    return SqlStore.open(
        config.url,
        migrate=migrate,
        password=password,
        pool_size=config.pool_size,
        max_overflow=config.max_overflow,
        pool_timeout=config.pool_timeout,
    )


def sync_partners(store: SqlStore, settings: Settings, clock: Clock) -> None:
    """Register every configured partner, recomputing the allocations of one whose stock mode changed (the
    service's use case, on the store the composition root opened)."""
    partners.sync(store, settings, clock)


def open_inbox(source: FolderSource | SftpSource) -> Inbox:
    """The transport of a source, connected."""
    if isinstance(source, FolderSource):
        return folder.FolderInbox(source)
    inbox = sftp.SftpInbox(source)
    inbox.connect()
    return inbox


def build(settings: Settings, clock: Clock = system_clock) -> App:
    """Open the store (migrating it in place), register the partners and wire the use cases."""
    store = open_store(settings.store)
    sync_partners(store, settings, clock)
    return wire(settings, store, clock)


def wire(settings: Settings, store: SqlStore, clock: Clock = system_clock, sleep: Sleep = time.sleep) -> App:
    """The use cases on an open store (its partners registered); `sleep` waits between delivery attempts."""
    ingestor = Ingestor(store, settings, clock)
    apis = Apis(settings)
    feed_apis = Apis(settings)
    return App(
        settings=settings,
        store=store,
        clock=clock,
        ingestor=ingestor,
        commands=Commands(store, settings, clock),
        pickup=Pickup(store, settings, ingestor, clock, open_inbox),
        apis=apis,
        feed_apis=feed_apis,
        feeds=FeedPoller(store, settings, clock, feed_apis),
        publisher=Publisher(store, settings, clock, senders(settings, apis), sleep=sleep),
    )
