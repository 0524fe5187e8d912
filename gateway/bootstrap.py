"""The one composition root: builds the store and the use cases from settings.

A command's process builds only what it uses: the use cases and the transports (SFTP, HTTP) are made, and their
modules imported, on first use, so a question such as `gateway ats` never loads paramiko or the HTTP stack."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, overload

from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.secrets import SecretError, read_secret
from gateway.service import partners
from gateway.settings import FolderExport, FolderSource, Settings, SftpExport, SftpSource, StoreSettings
from gateway.store.errors import StoreError
from gateway.store.sql import SqlStore

_T = TypeVar("_T")

if TYPE_CHECKING:
    from gateway.domain.messages import MessageKind
    from gateway.service.commands import Commands
    from gateway.service.feeds import FeedPoller
    from gateway.service.ingest import Clock, Ingestor
    from gateway.service.pickup import Pickup
    from gateway.service.publish import Outbound, Publisher, Sender, Sleep
    from gateway.transport.http import PartnerApi
    from gateway.transport.inbox import Inbox


_BUILDING = threading.RLock()  # one use case at a time is made (a use case may need another: the pickup, the ingestor)


class _built(cached_property[_T]):
    """cached_property made under one lock: two threads' first uses (the worker's loops, the API's requests)
    make one object, as Python 3.12's cached_property, which takes no lock, would not guarantee."""

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> _built[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> _T: ...

    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> _T | _built[_T]:
        with _BUILDING:
            return super().__get__(instance, owner)


def system_clock() -> Instant:
    """Now, as an instant."""
    return instant.from_datetime(datetime.now(UTC))


@dataclass
class App:
    """Everything a command or the worker needs, each use case made on first use (a command builds one or two)."""

    settings: Settings
    store: SqlStore
    clock: Clock
    sleep: Sleep = time.sleep  # how delivery waits between attempts

    @_built
    def ingestor(self) -> Ingestor:
        """Takes in files and bundles."""
        from gateway.service.ingest import Ingestor  # noqa: PLC0415 - see the module's docstring

        return Ingestor(self.store, self.settings, self.clock)

    @_built
    def commands(self) -> Commands:
        """The commands of the rules (place, set-status, confirm, stock set...)."""
        from gateway.service.commands import Commands  # noqa: PLC0415 - see the module's docstring

        return Commands(self.store, self.settings, self.clock)

    @_built
    def pickup(self) -> Pickup:
        """Takes complete files from the partners' sources."""
        from gateway.service.pickup import Pickup  # noqa: PLC0415 - see the module's docstring

        return Pickup(self.store, self.settings, self.ingestor, self.clock, open_inbox)

    @_built
    def apis(self) -> Apis:
        """Delivery's adapters (one requests Session per partner)."""
        return Apis(self.settings)

    @_built
    def feed_apis(self) -> Apis:
        """Polling's own, so a poll and a delivery never share a Session across threads."""
        return Apis(self.settings)

    @_built
    def feeds(self) -> FeedPoller:
        """Polls the partners' API feeds."""
        from gateway.service.feeds import FeedPoller  # noqa: PLC0415 - see the module's docstring

        return FeedPoller(self.store, self.settings, self.clock, self.feed_apis)

    @_built
    def publisher(self) -> Publisher:
        """Delivers the outbox to the partners."""
        from gateway.service.publish import Publisher  # noqa: PLC0415 - see the module's docstring

        return Publisher(self.store, self.settings, self.clock, senders(self.settings, self.apis), sleep=self.sleep)

    def close(self) -> None:
        """Release the partners' connections (those made) and the store."""
        for made in ("apis", "feed_apis"):
            if made in self.__dict__:
                self.__dict__[made].close()
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
                from gateway.transport.http import ApiConfigError, load_adapter  # noqa: PLC0415 - see the docstring

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
    from gateway.transport import folder, sftp  # noqa: PLC0415 - see the module's docstring

    if isinstance(export, FolderExport):
        return lambda: folder.FolderOutbound(export.path)
    return lambda: sftp.SftpOutbound(export)


def senders(settings: Settings, apis: Apis) -> Callable[[str], dict[MessageKind, Sender]]:
    """Each partner's route per kind of message."""

    from gateway.service.publish import ApiSender, FileExportSender, routes  # noqa: PLC0415 - as above

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
    from gateway.transport import folder, sftp  # noqa: PLC0415 - see the module's docstring

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
    return App(settings=settings, store=store, clock=clock, sleep=sleep)
