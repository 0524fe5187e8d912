"""What crosses the SFTP wire, done so one odd file cannot stop a source: names as bytes, links counted, and
errors that say what went wrong.

SFTP names are bytes. paramiko's `listdir_attr` decodes them as strict UTF-8, so one file named by a legacy
Windows tool in Latin-1 (`caf\\xe9-stock.csv`) makes the whole listing raise; here a name that is not UTF-8 keeps
its bytes as surrogate escapes (os.fsdecode's way) and goes back to the server as the same bytes. Protocol
version 3 carries no link count; OpenSSH's `longname` (an `ls -l` line) does. paramiko's channel time-out is a
`socket.timeout` without a message: `described` names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import paramiko
from paramiko.sftp import CMD_CLOSE, CMD_HANDLE, CMD_NAME, CMD_OPENDIR, CMD_READDIR


def wire(path: str) -> bytes:
    """A path as the server knows it: UTF-8, with the bytes of a name that was not UTF-8 as they were."""
    return path.encode("utf-8", "surrogateescape")


def unwire(raw: bytes) -> str:
    """A name from the server as text: bytes that are not UTF-8 kept as surrogate escapes."""
    return raw.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Listed:
    """One entry of a remote folder: its name, attributes and link count (1 where the server does not say)."""

    name: str
    attributes: paramiko.SFTPAttributes
    links: int


def listing(sftp: Any, folder: str) -> list[Listed]:
    """Every entry of `folder` but '.' and '..', names kept as bytes-safe text.

    The requests `SFTPClient.listdir_attr` makes, with the names read as bytes (its `_request` is the client's
    own synchronous call). Errors are paramiko's: OSError, EOFError, SSHException.
    """
    kind, message = sftp._request(CMD_OPENDIR, wire(folder))
    if kind != CMD_HANDLE:
        raise paramiko.SFTPError("expected a handle")
    handle = message.get_binary()
    found: list[Listed] = []
    while True:
        try:
            kind, message = sftp._request(CMD_READDIR, handle)
        except EOFError:  # the end of the folder
            break
        if kind != CMD_NAME:
            raise paramiko.SFTPError("expected a name response")
        for _ in range(message.get_int()):
            name = unwire(message.get_binary())
            longname = message.get_binary()
            attributes = paramiko.SFTPAttributes._from_msg(message)
            if name not in (".", ".."):
                found.append(Listed(name, attributes, _links(longname)))
    sftp._request(CMD_CLOSE, handle)
    return found


def _links(longname: bytes) -> int:
    """The link count of an `ls -l` line ("-rw-r--r--    2 user group 12 Jan  1 00:00 name"), else 1."""
    fields = longname.split(None, 2)
    if len(fields) >= 2 and fields[1].isdigit():
        return max(1, int(fields[1]))
    return 1


def described(exc: BaseException, setting: str, seconds: float) -> str:
    """An error as one line that says what happened: a time-out names the setting that ran out (paramiko's own
    `socket.timeout` has no message at all)."""
    if isinstance(exc, TimeoutError):
        return f"no answer from the server within {setting} ({seconds:g} s)"
    return str(exc) or type(exc).__name__
