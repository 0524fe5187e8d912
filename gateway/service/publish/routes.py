"""Where each kind of message goes: a partner's routes, and the senders that take a claimed batch there.

A kind goes to the partner's export folder when the partner exports it, else to its HTTP API when the API
delivers it, else nowhere (it waits, unrouted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from gateway import logs
from gateway.domain import instant
from gateway.domain.messages import MessageKind
from gateway.formats.export import message_csv
from gateway.settings import MESSAGE_KINDS, PartnerSettings
from gateway.store.port import Claim, OutboxRecord

log = logs.get(__name__)


class Sender(Protocol):
    """Where one kind of message goes: sends a claimed batch, returns the HTTP status (None for a file)."""

    def prepare(self) -> None:
        """Make sure the route can be used (its secrets read, its adapter loaded): ApiConfigError otherwise."""
        ...

    def send(self, claim: Claim) -> int | None:
        """Send the batch; raise DeliveryFailed (or TransportError) when it was not taken."""
        ...


class Api(Protocol):
    """What delivery needs of a partner API adapter."""

    def send(self, kind: str, idempotency_key: str, messages: Sequence[OutboxRecord]) -> int:
        """POST one batch."""
        ...


class ApiSender:
    """Sends batches to the partner's API (its adapter made on first use)."""

    def __init__(self, api: Callable[[], Api]) -> None:
        self.api = api

    def prepare(self) -> None:
        """Load the adapter (reads the API's secrets)."""
        self.api()

    def send(self, claim: Claim) -> int | None:
        """POST the batch with its id as the Idempotency-Key."""
        return self.api().send(claim.kind, claim.batch_id, claim.messages)


class Outbound(Protocol):
    """A folder files are delivered into (local or SFTP)."""

    def __enter__(self) -> Outbound: ...

    def __exit__(self, *_: object) -> None: ...

    def write(self, name: str, data: bytes) -> str:
        """Write a whole file under a temporary name, then rename it into place."""
        ...


FILE_PREFIXES = {
    MessageKind.ORDER_EXPORT: "orders",
    MessageKind.ORDER_CLOSED: "closed",
    MessageKind.ATS: "ats",
    MessageKind.CHANNEL_ATS: "channel-ats",
}


def export_name(partner: str, claim: Claim) -> str:
    """The file of a batch: the same name on a re-send, so a re-sent batch replaces its own file."""
    first = min(message.created_at for message in claim.messages)
    stamp = instant.to_datetime(first).strftime("%Y%m%dT%H%M%SZ")
    return f"{FILE_PREFIXES[claim.kind]}-{partner}-{stamp}-{claim.batch_id}.csv"


class FileExportSender:
    """Writes order export batches as CSV files into the partner's export folder."""

    def __init__(self, partner: str, delimiter: str, outbound: Callable[[], Outbound]) -> None:
        self.partner = partner
        self.delimiter = delimiter
        self.outbound = outbound

    def prepare(self) -> None:
        """Nothing to load: the folder is reached per batch."""

    def send(self, claim: Claim) -> int | None:
        """Write the batch's file."""
        data = message_csv(claim.kind, claim.messages, self.delimiter)
        with self.outbound() as folder:
            where = folder.write(export_name(self.partner, claim), data)
        log.info(
            "outbound_file_written", partner=self.partner, kind=claim.kind, file=where, messages=len(claim.messages)
        )
        return None


def routes(partner: PartnerSettings) -> dict[MessageKind, str]:
    """Where each kind of message goes: "api", "file" or nowhere (left out)."""
    found: dict[MessageKind, str] = {}
    for kind in MESSAGE_KINDS:
        if partner.export is not None and kind in partner.export.kinds:
            found[kind] = "file"
        elif partner.api is not None and kind in partner.api.deliver:
            found[kind] = "api"
    return found
