"""Placing an order under an Idempotency-Key: one call, answered placed, refused or replayed.

The key's answer is kept in the placement's own write transaction, so a retry racing the first request waits for
its answer, and a run the database rolled back kept neither the order nor the answer. A refused placement rolls
back; its answer is kept for the key afterwards, in a transaction of its own, unless another request with the key
answered first: then that answer stands. The answers are the entry point's (`Answers`): a replay is byte for byte
what the first request was sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from gateway import logs
from gateway.domain.errors import Refusal
from gateway.domain.orders import RequestedLine
from gateway.service.commands import Commands
from gateway.service.snapshots import AtsChange
from gateway.store.port import StoreError, UnitOfWork
from gateway.store.retry import retried

log = logs.get(__name__)

EVENT = "order_placed"


@dataclass(frozen=True)
class OrderRequest:
    """An order to place (all its lines or none), under an Idempotency-Key; `digest` identifies the request (the
    same request written differently has the same one), so a key reused for another request is told apart."""

    partner: str
    order_id: str
    lines: Sequence[RequestedLine]
    key: str
    digest: str
    wanted_on: date | None = None  # the date its lines are wanted on (None: today, or their collection's pickup)


@dataclass(frozen=True)
class Answer:
    """An answer as the entry point sends it, kept with its key."""

    status: int
    body: str


class Answers(Protocol):
    """How the entry point answers a placement: the answer kept for the key."""

    def placed(self, changes: list[AtsChange]) -> Answer:
        """The answer to a placement that went through, with the ATS values it moved."""
        ...

    def refused(self, refusal: Refusal) -> Answer:
        """The answer to a placement the rules refused."""
        ...


@dataclass(frozen=True)
class Placed:
    """The order is placed: the ATS values it moved, and its answer as kept for the key."""

    changes: list[AtsChange]
    answer: Answer


@dataclass(frozen=True)
class Refused:
    """Nothing placed: the rules refused (the answer kept for the key), or the key answered another request."""

    refusal: Refusal


@dataclass(frozen=True)
class Replayed:
    """The key answered this same request already: its first answer, again."""

    answer: Answer


Outcome = Placed | Refused | Replayed


@dataclass(eq=False)
class KeyReused(Refusal):
    """An Idempotency-Key that answered another request."""

    code = "idempotency_key_reused"
    key: str

    def message(self) -> str:
        return f"the Idempotency-Key {self.key} was used with another body; use a new key for another request"


def place(commands: Commands, request: OrderRequest, answers: Answers) -> Outcome:
    """Place `request`'s order once for its key: placed, refused by the rules, or the key's first answer replayed
    (refused with KeyReused when the key answered another request)."""
    partner, key = request.partner, request.key

    def work(tx: UnitOfWork) -> Outcome:
        partner_id = tx.partners.id_of(partner)
        # in the placement's own write transaction: a retry racing the first request waits for its answer
        earlier = tx.requests.answer(partner_id, key)
        if earlier is not None:
            return _again(earlier, request)
        engine = commands.engine(tx, partner)
        engine.place(request.order_id, request.lines, wanted_on=request.wanted_on)
        changes = list(engine.changes.values())
        # in the same transaction: the order and its answer are kept together, or neither
        answer = answers.placed(changes)
        tx.requests.keep(partner_id, key, request.digest, answer.status, answer.body, commands.clock())
        return Placed(changes, answer)

    try:
        outcome = _at_once(commands, request) or commands.transaction(partner, EVENT, work, order_id=request.order_id)
    except Refusal as refused:
        stored = _keep_refusal(commands, request, answers.refused(refused))
        if stored is not None:  # another request with this key answered first: its answer stands
            return _again(stored, request)
        return Refused(refused)
    if isinstance(outcome, Placed):
        log.bind(partner=partner, order_id=request.order_id).info(EVENT, ats_changes=len(outcome.changes))
    return outcome


def _at_once(commands: Commands, request: OrderRequest) -> Outcome | None:
    """The placement in one statement, its answer kept with the order (see at_once); None: the engine's path."""
    decided = commands.place_at_once(
        request.partner, request.order_id, request.lines, request.key, request.digest, wanted_on=request.wanted_on
    )
    if decided is None:
        return None
    if decided.answer is not None:
        return _again(decided.answer, request)
    if decided.body is None:
        raise StoreError("a placement under an Idempotency-Key was placed without its answer kept")
    return Placed(decided.changes, Answer(201, decided.body))


def _again(earlier: tuple[str, int, str], request: OrderRequest) -> Replayed | Refused:
    """The key's first answer again, or KeyReused when it answered another request."""
    first_digest, status, body = earlier
    if first_digest != request.digest:
        return Refused(KeyReused(request.key))
    return Replayed(Answer(status, body))


def _keep_refusal(commands: Commands, request: OrderRequest, answer: Answer) -> tuple[str, int, str] | None:
    """Keep a refused placement's answer for its key (the refusal rolled the order back); when another request
    with the key answered first, its answer."""

    def keep() -> tuple[str, int, str] | None:
        with commands.store.write(wait=commands.wait) as tx:
            partner_id = tx.partners.id_of(request.partner)
            earlier = tx.requests.answer(partner_id, request.key)
            if earlier is not None:
                return earlier
            tx.requests.keep(partner_id, request.key, request.digest, answer.status, answer.body, commands.clock())
        return None

    return retried(keep, what="refusal_kept", retries=commands.retries, context={"partner": request.partner})
