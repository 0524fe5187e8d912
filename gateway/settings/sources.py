"""Where a partner's inbound files come from: local drop folders and remote SFTP folders, and how to reach an
SFTP server (shared with SFTP exports)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from gateway.formats.manifest import BUNDLE
from gateway.formats.rows import Kind
from gateway.settings.base import Strict

BUNDLE_PATTERN = "*.bundle.csv"  # a bundle source's manifests unless `pattern` says otherwise


class _SourceSettings(Strict):
    """What every inbound file source has: its kind, which files, how to know they are complete, where they go."""

    name: str = ""  # default: "<kind>-<type>-<position>"
    # a kind of flat file, or "bundle": manifests (`kind,file`) whose members are taken with them
    kind: Kind | Literal["bundle"]
    pattern: str = "*.csv"  # a bundle source's default: BUNDLE_PATTERN (its members must not match it)
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

    @model_validator(mode="after")
    def _bundle_pattern(self) -> Self:
        # "*.csv" would take every member as a manifest of its own
        if self.kind == BUNDLE and "pattern" not in self.model_fields_set:
            object.__setattr__(self, "pattern", BUNDLE_PATTERN)
        return self


class FolderSource(_SourceSettings):
    """A local drop folder, watched with watchdog (a polling observer with `poll = true`, for network mounts)."""

    type: Literal["folder"]
    path: Path
    poll: bool = False
    rescan_seconds: float = Field(default=30.0, gt=0)


class SftpConnection(Strict):
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
