"""One partner: its stock rule, time zone and files (files.py), its sources (sources.py), its HTTP API, how the
outbox is delivered to it, and where order exports are written."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from gateway.domain.atp import SCHEDULE_POINTS
from gateway.domain.messages import MessageKind
from gateway.domain.modes import Policy, StockMode
from gateway.formats.pages import Feed
from gateway.settings.base import ConfigError, Strict
from gateway.settings.files import PartnerFiles
from gateway.settings.sources import FolderSource, SftpConnection, SftpSource, Source

# the configuration names them by their values: "ats", "stock"...
MESSAGE_KINDS: tuple[MessageKind, ...] = tuple(MessageKind)
FEEDS: tuple[Feed, ...] = tuple(Feed)


class ApiSettings(Strict):
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


MAX_SCHEDULE_POINTS = 100  # dates one ATS message may carry: a bound on its size


class DeliverySettings(Strict):
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
    # the oldest undelivered message may be this old before the GatewayOutboxTooOld alert fires (exported on
    # /metrics as gateway_outbox_oldest_limit_seconds, which deploy/prometheus/alerts.yml compares with)
    alert_age_minutes: float = Field(default=15.0, gt=0, allow_inf_nan=False)
    # the most dates an ATS message of a SKU with dated supply carries beside today's value (its `schedule`);
    # 0: never a schedule, every ATS message as for a partner that sends no dates
    schedule_points: int = Field(default=SCHEDULE_POINTS, ge=0, le=MAX_SCHEDULE_POINTS)


class _ExportSettings(Strict):
    delimiter: Literal[",", ";", "\t"] = ","
    # the kinds of message written as files (the others go to the API, if any)
    kinds: list[MessageKind] = Field(default_factory=lambda: [MessageKind.ORDER_EXPORT], min_length=1)


class FolderExport(_ExportSettings):
    """Messages (order exports by default) written as CSV files into a local folder."""

    type: Literal["folder"]
    path: Path


class SftpExport(_ExportSettings, SftpConnection):
    """Messages (order exports by default) written as CSV files into a remote SFTP folder."""

    type: Literal["sftp"]


Export = Annotated[FolderExport | SftpExport, Field(discriminator="type")]


class PartnerSettings(Strict):
    """One partner: its stock mode, time zone, snapshot rule, file formats and inbound sources."""

    stock_mode: StockMode
    pending_allocation: bool = True
    timezone: str = "UTC"
    absent: Literal["keep", "zero"] = "keep"
    # seconds a stock level's as_of or a confirmation's confirmed_at may be ahead of the gateway's clock; a row
    # stamped later is refused (`future_timestamp`): taken, it would make its SKU's later snapshots stale
    max_clock_skew: float = Field(default=300.0, ge=0, allow_inf_nan=False)
    # whether a confirmed quantity may exceed the line's ordered quantity (else refused, `confirmed_above_ordered`)
    allow_over_confirmation: bool = False
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
                object.__setattr__(source, "name", f"{source.kind}-{source.type}-{position}")
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
