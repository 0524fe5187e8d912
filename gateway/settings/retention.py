"""What the gateway keeps of what it wrote, and for how long (`[retention]`): the staged copy of every applied
item (so that `gateway ledger reapply` can apply its content again on purpose), delivered outbox messages, ledger
entries with their reports, the sha256 index of applied content that keeps a re-delivered file a duplicate, the
files sources moved aside, and the feed pages kept aside. The worker removes what is older (gateway/service/purge.py,
daily); `gateway purge` does the same from cron."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from gateway.settings.base import Strict

_DAYS = 36_500  # a hundred years: the largest number of days any kind is kept


class RetentionSettings(Strict):
    """How long each thing the gateway writes is kept (`[retention]`), in days."""

    # one file per applied (or partly refused) item: ITEMS/<partner>/<ledger id>; relative to the configuration
    # file's folder
    items_path: Path = Path("var/items")
    # a kept copy older than this many days is pruned (by the worker, at start and daily); 0 keeps none, and then
    # nothing can be re-applied by its ledger entry
    items_days: int = Field(default=30, ge=0, le=3650)
    # delivered outbox messages (undelivered and dead ones are never removed), counted from their delivery
    outbox_days: int = Field(default=7, ge=1, le=_DAYS)
    # ledger entries and their reports, counted from their receipt; a quarantined file's entry is kept until it
    # is released (then this long too)
    ledger_days: int = Field(default=90, ge=1, le=_DAYS)
    # the sha256 of applied content, kept past its ledger entry so that the same content delivered again is still
    # a duplicate (and the duplicate names the entry it repeats); past this, it applies again
    dedupe_days: int = Field(default=365, ge=1, le=_DAYS, validate_default=True)  # checked against ledger_days
    # files folder sources moved to their archive/ and failed/ sub-folders, reports beside them included, counted
    # from when they were moved there
    files_days: int = Field(default=30, ge=1, le=_DAYS)
    # feed pages kept aside with their error reports (`[partners.P.api] failed`)
    pages_days: int = Field(default=30, ge=1, le=_DAYS)
    # the most rows removed per transaction; batches start at 50 and are sized to take at most 20 ms each (halved
    # after a slower one), so a placement never waits long behind one
    batch_size: int = Field(default=500, ge=1, le=10_000)

    @field_validator("dedupe_days")
    @classmethod
    def _dedupe_outlives_the_ledger(cls, value: int, info: ValidationInfo) -> int:
        ledger_days = info.data.get("ledger_days")
        if isinstance(ledger_days, int) and value < ledger_days:
            raise ValueError(
                f"{value} is shorter than ledger_days ({ledger_days}): the index that recognises duplicates "
                "must outlive the ledger entries it stands for"
            )
        return value
