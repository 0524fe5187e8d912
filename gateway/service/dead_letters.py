"""Dead letters put back in line: messages given up on, queued again on an operator's word."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway import logs
from gateway.domain.instant import Instant
from gateway.store.port import Store

log = logs.get(__name__)


@dataclass(frozen=True)
class Retried:
    """What a retry did: messages queued again, and dead values left dead because a newer one of their key was
    queued or delivered since."""

    revived: int
    superseded: int

    def missed(self, ids: Sequence[int]) -> bool:
        """Whether some of the `ids` asked for were no dead message of the partner."""
        return bool(ids) and self.revived + self.superseded < len(set(ids))


def retry(store: Store, partner: str, ids: Sequence[int] | None, now: Instant) -> Retried:
    """Put the partner's dead messages (those of `ids`, or all of them for None) back in the queue, due at `now`;
    a value superseded by a newer one of its key is not."""
    with store.write() as tx:
        revived, superseded = tx.outbox.revive(tx.partners.id_of(partner), None if ids is None else list(ids), now)
    log.info("outbox_retry", partner=partner, revived=revived, superseded=superseded)
    return Retried(revived, superseded)
