"""Typed, validated configuration: a TOML file plus `GATEWAY_*` environment variables.

Nothing here runs at import. `load()` reads the file named by `--config` or `GATEWAY_CONFIG`; a bad file
raises ConfigError listing every problem by key. Secrets are never values in this file: later sources name
an environment variable or a file that holds them.
"""

from __future__ import annotations

import codecs
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.domain.modes import Policy, StockMode
from gateway.formats.csvfile import MAX_LINE_BYTES, CsvOptions
from gateway.formats.rows import Kind

CONFIG_ENV = "GATEWAY_CONFIG"
STORE_URL_ENV = "GATEWAY_STORE_URL"
DEFAULT_STORE_URL = "sqlite:///var/gateway.db"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists each one as 'key: what is wrong'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StockColumns(_Strict):
    """Header names of a partner's stock files, where they differ from the defaults."""

    sku: str = "sku"
    quantity: str = "quantity"
    as_of: str = "as_of"


class OrderColumns(_Strict):
    """Header names of a partner's order files."""

    order_id: str = "order_id"
    sku: str = "sku"
    quantity: str = "quantity"
    status: str = "status"
    assembly: str = "assembly"
    collection: str = "collection"


class ConfirmationColumns(_Strict):
    """Header names of a partner's confirmation files."""

    order_id: str = "order_id"
    sku: str = "sku"
    confirmed_quantity: str = "confirmed_quantity"
    confirmed_at: str = "confirmed_at"


class CapColumns(_Strict):
    """Header names of a partner's cap files."""

    sku: str = "sku"
    assembly: str = "assembly"
    collection: str = "collection"
    max: str = "max"


class _FileSettings(_Strict):
    delimiter: Literal[",", ";", "\t"] | None = None
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value

    def csv_options(self) -> CsvOptions:
        """These settings as the CSV reader's options."""
        columns: BaseModel = getattr(self, "columns")  # noqa: B009 - every subclass declares it
        return CsvOptions(delimiter=self.delimiter, encoding=self.encoding, columns=columns.model_dump())


class StockFileSettings(_FileSettings):
    """How a partner writes stock snapshots."""

    columns: StockColumns = StockColumns()


class OrderFileSettings(_FileSettings):
    """How a partner writes order files."""

    columns: OrderColumns = OrderColumns()


class ConfirmationFileSettings(_FileSettings):
    """How a partner writes confirmation files."""

    columns: ConfirmationColumns = ConfirmationColumns()


class CapFileSettings(_FileSettings):
    """How a partner writes cap files."""

    columns: CapColumns = CapColumns()


class PartnerFiles(_Strict):
    """File options per kind."""

    stock: StockFileSettings = StockFileSettings()
    orders: OrderFileSettings = OrderFileSettings()
    confirmations: ConfirmationFileSettings = ConfirmationFileSettings()
    caps: CapFileSettings = CapFileSettings()
    # a header or row line longer than this (in bytes, its line break not counted) refuses the whole file
    max_line_bytes: int = Field(default=MAX_LINE_BYTES, ge=256)

    def csv_options(self, kind: Kind) -> CsvOptions:
        """The CSV reader's options for one kind."""
        settings: _FileSettings = getattr(self, kind.value)
        return replace(settings.csv_options(), max_line_bytes=self.max_line_bytes)


class _SourceSettings(_Strict):
    """What every inbound file source has: its kind, which files, how to know they are complete, where they go."""

    name: str = ""  # default: "<kind>-<type>-<position>"
    kind: Kind
    pattern: str = "*.csv"
    # marker: NAME<marker_suffix> present; rename: written elsewhere and renamed into place (default);
    # stable: size and modification time unchanged across two looks `stable_seconds` apart
    completion: Literal["marker", "rename", "stable"] = "rename"
    marker_suffix: str = ".done"
    stable_seconds: float = Field(default=2.0, ge=0)
    archive: str = "archive"
    failed: str = "failed"
    delete: bool = False  # delete processed files instead of moving them to `archive`
    max_transport_failures: int = Field(default=5, ge=1)
    # a file is quarantined only when its failures also span this long: a passing outage (a full disk, a busy
    # store) does not set a good file aside for good
    quarantine_after_seconds: float = Field(default=3600.0, ge=0)
    max_files_per_poll: int = Field(default=100, ge=1)
    # the workers ([worker] name) that take this source; none: every worker (several workers sharing one
    # PostgreSQL store take turns, one at a time). A folder source names the machines that mount its folder.
    workers: list[str] | None = Field(default=None, min_length=1)

    @field_validator("archive", "failed")
    @classmethod
    def _sub_folder(cls, value: str) -> str:
        if not value or "/" in value or "\\" in value or value in (".", ".."):
            raise ValueError(f"{value!r}: a sub-folder name of the source folder, not a path")
        return value


class FolderSource(_SourceSettings):
    """A local drop folder, watched with watchdog (a polling observer with `poll = true`, for network mounts)."""

    type: Literal["folder"]
    path: Path
    poll: bool = False
    rescan_seconds: float = Field(default=30.0, gt=0)


class SftpConnection(_Strict):
    """How to reach an SFTP server. Secrets by reference: an environment variable name or a file path."""

    host: str
    port: int = Field(default=22, ge=1, le=65535)
    username: str
    password_env: str | None = None
    password_file: Path | None = None
    private_key_file: Path | None = None
    private_key_passphrase_env: str | None = None
    known_hosts: Path
    remote_path: str
    connect_timeout: float = Field(default=10.0, gt=0)
    banner_timeout: float = Field(default=15.0, gt=0)
    auth_timeout: float = Field(default=15.0, gt=0)
    channel_timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        given = [x for x in (self.password_env, self.password_file, self.private_key_file) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of password_env, password_file and private_key_file")
        return self


class SftpSource(_SourceSettings, SftpConnection):
    """A remote folder polled over SFTP."""

    type: Literal["sftp"]
    poll_seconds: float = Field(default=60.0, gt=0)
    download_workers: int = Field(default=4, ge=1, le=16)


Source = Annotated[FolderSource | SftpSource, Field(discriminator="type")]


MessageKind = Literal["ats", "channel_ats", "order_closed", "order_export"]
MESSAGE_KINDS: tuple[MessageKind, ...] = ("ats", "channel_ats", "order_closed", "order_export")
Feed = Literal["stock", "acknowledgements"]
FEEDS: tuple[Feed, ...] = ("stock", "acknowledgements")


class ApiSettings(_Strict):
    """A partner's HTTP API: polled for stock and acknowledgements, and where outbox messages are posted.

    Secrets by reference: `token_env`/`token_file` for a bearer token, `username` with `password_env` or
    `password_file` for basic auth.
    """

    base_url: str
    # "module:Class" of a partner whose API differs from the reference (a subclass of PartnerApi)
    adapter: str = "gateway.transport.http:PartnerApi"
    token_env: str | None = None
    token_file: Path | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None  # a CA bundle for a partner whose certificate is not publicly signed
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    # seconds one request may take in all, redirects and the whole body included (a read timeout bounds each wait)
    request_deadline: float = Field(default=120.0, gt=0)
    # a feed page's largest body, counted after decompression; a larger page is refused ("too_large")
    max_page_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    feeds: list[Feed] = Field(default_factory=lambda: list(FEEDS))
    page_limit: int = Field(default=500, ge=1, le=100_000)
    poll_seconds: float = Field(default=60.0, gt=0)
    max_pages_per_poll: int = Field(default=1000, ge=1)
    deliver: list[MessageKind] = Field(default_factory=lambda: list(MESSAGE_KINDS))
    # where malformed pages are kept with their error report (relative to the configuration file's folder)
    failed: Path = Path("var/api-failed")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r}: an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("credentials do not belong in base_url: use token_env/token_file or username/password_env")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r}: a base URL without ?query or #fragment")
        return value.strip().rstrip("/")

    @field_validator("adapter")
    @classmethod
    def _adapter_path(cls, value: str) -> str:
        module, _, name = value.partition(":")
        if not module or not name.isidentifier():
            raise ValueError(f"{value!r}: name the adapter as 'package.module:ClassName'")
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> Self:
        if self.token_env is not None and self.token_file is not None:
            raise ValueError("give token_env or token_file, not both")
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give password_env or password_file, not both")
        basic = self.username is not None
        if basic != (self.password_env is not None or self.password_file is not None):
            raise ValueError("basic auth needs username with password_env or password_file")
        if basic and (self.token_env is not None or self.token_file is not None):
            raise ValueError("give a bearer token or basic auth, not both")
        return self


class DeliverySettings(_Strict):
    """How the outbox is delivered to a partner: batches, retries, dead letter and the circuit breaker."""

    batch_size: int = Field(default=500, ge=1, le=10_000)
    retries: int = Field(default=3, ge=1, le=20)  # attempts of one batch within one delivery pass
    backoff_initial: float = Field(default=0.5, gt=0)  # seconds; doubles per attempt, with jitter
    backoff_max: float = Field(default=300.0, gt=0)  # seconds: the longest wait between passes
    # the longest wait between attempts within one pass; a longer Retry-After ends the pass (due again then)
    wait_in_pass_max: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=50, ge=1)  # attempts of a message in all, then dead letter
    max_age_hours: float = Field(default=72.0, gt=0)  # an undelivered message older than this goes to dead letter
    breaker_threshold: int = Field(default=5, ge=1)  # failed batches in a row that open the circuit breaker
    breaker_pause: float = Field(default=60.0, gt=0)  # seconds the breaker stays open before one probe batch
    lease_seconds: float = Field(default=300.0, gt=0)  # how long a claimed batch is kept from other workers


class _ExportSettings(_Strict):
    delimiter: Literal[",", ";", "\t"] = ","
    # the kinds of message written as files (the others go to the API, if any)
    kinds: list[MessageKind] = Field(default_factory=lambda: list(MESSAGE_KINDS[3:]), min_length=1)


class FolderExport(_ExportSettings):
    """Messages (order exports by default) written as CSV files into a local folder."""

    type: Literal["folder"]
    path: Path


class SftpExport(_ExportSettings, SftpConnection):
    """Messages (order exports by default) written as CSV files into a remote SFTP folder."""

    type: Literal["sftp"]


Export = Annotated[FolderExport | SftpExport, Field(discriminator="type")]


class PartnerSettings(_Strict):
    """One partner: its stock mode, time zone, snapshot rule, file formats and inbound sources."""

    stock_mode: StockMode
    pending_allocation: bool = True
    timezone: str = "UTC"
    absent: Literal["keep", "zero"] = "keep"
    files: PartnerFiles = PartnerFiles()
    sources: list[Source] = Field(default_factory=list)
    api: ApiSettings | None = None
    delivery: DeliverySettings = DeliverySettings()
    export: Export | None = None  # order exports by file (else over the API, when it delivers them)

    @model_validator(mode="after")
    def _named_sources(self) -> PartnerSettings:
        names: set[str] = set()
        for position, source in enumerate(self.sources, start=1):
            if not source.name:
                object.__setattr__(source, "name", f"{source.kind.value}-{source.type}-{position}")
            if source.name in names:
                raise ValueError(f"two sources are named {source.name!r}")
            names.add(source.name)
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_batch(self) -> PartnerSettings:
        # A claimed batch may wait for the batch before it, then take its own attempts: its lease must outlast
        # both, or another claim could take it while it is still being sent.
        if self.api is not None:
            one = self.delivery.retries * (self.api.connect_timeout + self.api.read_timeout)
            one += (self.delivery.retries - 1) * self.delivery.wait_in_pass_max
            if self.delivery.lease_seconds < 2 * one + 10:
                raise ValueError(
                    f"delivery.lease_seconds ({self.delivery.lease_seconds:g}) must be at least {2 * one + 10:g}: "
                    "two batches' worst case (retries x (connect_timeout + read_timeout) + waits), and 10 s"
                )
        return self

    def source(self, name: str) -> FolderSource | SftpSource:
        """The source called `name`."""
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError([f"sources.{name}: no such source (known: {known})"])

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
        return value

    @property
    def policy(self) -> Policy:
        """The partner's stock policy."""
        return Policy(self.stock_mode, self.pending_allocation)

    @property
    def zone(self) -> ZoneInfo:
        """The zone of timestamps given without an offset."""
        return ZoneInfo(self.timezone)


class StoreSettings(_Strict):
    """Where the stock store lives: a SQLite file (one worker) or a PostgreSQL database (several workers).

    A PostgreSQL password never sits in the URL of the file: `password_env` or `password_file` names it (or the
    whole URL comes from GATEWAY_STORE_URL)."""

    url: str = DEFAULT_STORE_URL
    password_env: str | None = None
    password_file: Path | None = None
    # PostgreSQL connections per process: pool_size kept open, up to max_overflow more under load, and how long
    # a thread waits for one before the store counts as busy
    pool_size: int = Field(default=5, ge=1, le=100)
    max_overflow: int = Field(default=5, ge=0, le=100)
    pool_timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_password(self) -> Self:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give at most one of password_env and password_file")
        return self


class WorkerSettings(_Strict):
    """The long-running worker (`gateway run`)."""

    name: str = Field(default_factory=socket.gethostname, min_length=1)  # matched by a source's `workers`

    health_host: str = "127.0.0.1"
    # /healthz, /readyz and /metrics; 0 picks a free port (logged in `worker_started`), none: no endpoint
    health_port: int | None = Field(default=8081, ge=0, le=65535)
    shutdown_grace: float = Field(default=30.0, gt=0)  # seconds to finish the items in hand after SIGTERM
    delivery_interval: float = Field(default=30.0, gt=0)  # a delivery pass at least this often (safety net)
    misfire_grace: float = Field(default=30.0, gt=0)  # a poll that could not start on time may start this late
    jitter: float = Field(default=5.0, ge=0)  # up to this many seconds added to each poll, so partners do not
    # poll in lock-step
    staleness_factor: float = Field(default=3.0, ge=1)  # /readyz: a source is stale after this many intervals


class ApiToken(_Strict):
    """One bearer token of the platform API, scoped to partners. The token itself is read from the environment
    variable or the file named here, never written in the configuration."""

    name: str  # who holds it (in logs; never the token)
    token_env: str | None = None
    token_file: Path | None = None
    partners: list[str] = Field(min_length=1)  # the partners it may act for; "*" for all

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.token_env is None) == (self.token_file is None):
            raise ValueError("give exactly one of token_env and token_file")
        return self


NO_TOKENS = "no [[api.tokens]] table: the platform API needs at least one token (it would answer 401 to everything)"


class PlatformApiSettings(_Strict):
    """The platform HTTP API (`gateway serve`, or inside `gateway run` when enabled)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8082, ge=0, le=65535)
    tokens: list[ApiToken] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1)  # a larger request body: 413, before it is read
    max_connections: int = Field(default=200, ge=1)  # open at once; one more is answered 503 and closed
    header_timeout: float = Field(default=10.0, gt=0)  # seconds a connection has to send a request's head
    # seconds a command waits for SQLite's writer (a large file being applied holds it) before a 503 with
    # Retry-After; reads never wait for it
    write_wait: float = Field(default=5.0, ge=0, le=300)

    @model_validator(mode="after")
    def _named_once(self) -> Self:
        names = [token.name for token in self.tokens]
        if len(names) != len(set(names)):
            raise ValueError("two tokens have the same name")
        if self.enabled and not self.tokens:  # `gateway run` serves it: refused at start, as `gateway serve` is
            raise ValueError(f"enabled, but {NO_TOKENS}")
        return self


class Settings(_Strict):
    """The whole configuration."""

    # where inbound files are copied before they are applied (relative to the configuration file's folder)
    staging: Path = Path("var/staging")
    store: StoreSettings = StoreSettings()
    worker: WorkerSettings = WorkerSettings()
    api: PlatformApiSettings = PlatformApiSettings()
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


def _holds_password(url: str) -> bool:
    """Whether a store URL carries a password (user:password@host, or a password= query parameter)."""
    parts = urlsplit(url)
    return bool(parts.password) or any(key.lower() == "password" for key, _ in parse_qsl(parts.query))


def resolve_store_url(url: str, base: Path) -> str:
    """A relative SQLite path is relative to the configuration file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        relative = url[len(prefix) :]
        if relative and not relative.startswith(":memory:"):
            return prefix + str((base / relative).resolve())
    return url


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
    if not override and _holds_password(settings.store.url):
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
    return settings.model_copy(update={"store": settings.store.model_copy(update={"url": url}), "staging": staging})


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
