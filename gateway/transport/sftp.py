"""Remote folders over SFTP, with paramiko. Host keys are checked against known_hosts: an unknown key is refused.

One connection serves one poll; downloads run over a few SFTP channels of it at once, with read-ahead, into
staging files; nothing remote is moved until the item has committed.

The parts: sftp_connection.py (the connection, host keys, credentials), sftp_download.py (into staging),
sftp_wire.py (names as bytes, listings, errors in words); here the two things the gateway uses, an inbox
(listing, downloads, moving aside) and an outbound folder.
"""

from __future__ import annotations

import contextlib
import posixpath
import stat
import uuid
from collections.abc import Mapping

import paramiko

from gateway.transport.errors import TransportError
from gateway.transport.inbox import REPORT_SUFFIX, Entry, report_bytes, safe_name, shown_name
from gateway.transport.sftp_connection import Connection
from gateway.transport.sftp_download import Downloader
from gateway.transport.sftp_wire import listing, wire


class SftpInbox(Downloader):
    """One remote folder, connected for one poll."""

    # listing (fetching: sftp_download.py)

    def entries(self) -> list[Entry]:
        """Regular files in the remote folder as the server lists them, with their link counts, whatever their
        names (symbolic links and folders left out; the pickup refuses names it never takes)."""
        try:
            listed = listing(self._sftp, self.folder)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"cannot list {self.folder} on {self.settings.host}: {self._why(exc)}") from exc
        return [
            Entry(item.name, item.attributes.st_size or 0, float(item.attributes.st_mtime or 0), item.links)
            for item in listed
            if item.attributes.st_mode is not None and stat.S_ISREG(item.attributes.st_mode)
        ]

    # moving aside

    def _rename(self, entry: Entry, sub_folder: str) -> str:
        target_folder = posixpath.join(self.folder, sub_folder)
        try:
            try:
                self._sftp.stat(target_folder)
            except FileNotFoundError:
                self._sftp.mkdir(target_folder)
            target = self._remote(entry.name, sub_folder)
            try:
                self._sftp.stat(wire(target))
                target = f"{target}.{uuid.uuid4().hex[:8]}"  # the same name came before: keep both
            except FileNotFoundError:
                pass
            self._sftp.posix_rename(wire(self._remote(entry.name)), wire(target))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            where = f"{sub_folder}/ on {self.settings.host}"
            raise TransportError(f"cannot move {entry.shown} to {where}: {self._why(exc)}") from exc
        return target

    def _remove_marker(self, entry: Entry, marker_suffix: str) -> None:
        try:
            self._sftp.remove(wire(self._remote(entry.name + marker_suffix)))
        except FileNotFoundError:
            pass
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"cannot remove the done-marker of {entry.shown}: {self._why(exc)}") from exc

    def _write_report(self, target: str, report: Mapping[str, object]) -> None:
        temporary = posixpath.join(posixpath.dirname(target), f".{posixpath.basename(target)}{REPORT_SUFFIX}.part")
        try:
            with self._sftp.open(wire(temporary), "wb") as out:
                out.write(report_bytes(report))
            self._sftp.posix_rename(wire(temporary), wire(target + REPORT_SUFFIX))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            name = shown_name(posixpath.basename(target))
            raise TransportError(f"cannot write the report of {name}: {self._why(exc)}") from exc

    def archive(self, entry: Entry, marker_suffix: str, report: Mapping[str, object] | None = None) -> None:
        """Move to archive/ (or delete), remove the done-marker; a report (refused rows, warnings) goes beside it."""
        if self.settings.delete:
            try:
                self._sftp.remove(wire(self._remote(entry.name)))
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise TransportError(f"cannot delete {entry.shown} on {self.settings.host}: {self._why(exc)}") from exc
        else:
            target = self._rename(entry, self.settings.archive)
            if report is not None:
                self._write_report(target, report)
        self._remove_marker(entry, marker_suffix)

    def fail(self, entry: Entry, marker_suffix: str, report: Mapping[str, object]) -> None:
        """Move to failed/ with NAME.error.json beside it, remove the done-marker."""
        target = self._rename(entry, self.settings.failed)
        self._write_report(target, report)
        self._remove_marker(entry, marker_suffix)


class SftpOutbound(Connection):
    """A remote folder files are delivered into: written under a hidden temporary name, then renamed into place,
    so the partner never picks up half a file."""

    def write(self, name: str, data: bytes) -> str:
        """Write `data` as `name` (replacing a file of that name); return its remote path."""
        if not safe_name(name):
            raise TransportError(f"{name!r} is not a file name")
        target = posixpath.join(self.folder, name)
        temporary = posixpath.join(self.folder, f".{name}.part")
        try:
            with self._sftp.open(temporary, "wb") as out:
                out.write(data)
            self._sftp.posix_rename(temporary, target)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                self._sftp.remove(temporary)  # no half file left behind, when the connection still allows
            raise TransportError(f"cannot write {target} on {self.settings.host}: {self._why(exc)}") from exc
        return target
