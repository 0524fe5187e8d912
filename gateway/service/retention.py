"""The kept copies of applied items: what `gateway ledger reapply` applies again, pruned after `retention.items_days`.

An item that applies (some of its rows refused or not) has its staged file kept as ITEMS/<partner>/<ledger id>,
placed whole or not at all (files.place_copy: a hard link of a staging copy, else a copy) in the transaction that
applies it, just before the commit, and stamped with the gateway's clock, by which pruning counts its age.
Rejected items, duplicates, dry runs and feed pages keep nothing.

A copy placed by a transaction that then rolls back is an orphan no committed entry names. It is harmless: a
re-apply checks a copy's sha256 against its entry's before reading it (on SQLite a later entry may take the same
id: its own copy replaces the orphan, and when it keeps none the check refuses the orphan), and pruning removes
it with the others once it is old enough.
"""

from __future__ import annotations

from pathlib import Path

from gateway import files, logs
from gateway.domain.instant import Instant
from gateway.settings import RetentionSettings

log = logs.get(__name__)

_DAY = 86_400 * 1_000_000  # an instant counts microseconds


class NotKept(Exception):
    """A ledger entry's content cannot be applied again: it is no applied item, or its copy is gone."""


def copy_path(settings: RetentionSettings, partner: str, ledger_id: int) -> Path:
    """Where the copy of ledger entry `ledger_id` of `partner` is kept."""
    return settings.items_path / partner / str(ledger_id)


def keep(settings: RetentionSettings, partner: str, ledger_id: int, path: Path, now: Instant) -> None:
    """Keep the file at `path` as the copy of ledger entry `ledger_id` (nothing when `items_days` is 0).

    A staging copy (`*.staged`, which no one changes) is hard-linked, so a large snapshot costs no second copy;
    a file given on the command line is copied, as its owner may change it afterwards. A copy that cannot be
    kept is logged (`item_not_kept`) and the item applies all the same: its re-apply will say no copy is kept."""
    if settings.items_days == 0:
        return
    target = copy_path(settings, partner, ledger_id)
    try:
        files.place_copy(path, target, link=path.suffix == files.STAGED_SUFFIX, mtime_ns=now * 1000)
    except OSError as exc:
        log.error("item_not_kept", partner=partner, ledger_id=ledger_id, path=str(target), error=str(exc))


def kept(settings: RetentionSettings, partner: str, ledger_id: int) -> Path | None:
    """The kept copy of ledger entry `ledger_id`, if there is one (its content not checked yet)."""
    path = copy_path(settings, partner, ledger_id)
    return path if path.is_file() else None


def prune(settings: RetentionSettings, now: Instant) -> int:
    """Remove the kept copies (and any half-written one) older than `items_days`; log `items_pruned`; how many."""
    pruned = 0
    folders = sorted(settings.items_path.iterdir()) if settings.items_path.is_dir() else []
    for folder in folders:
        if folder.is_dir():
            pruned += prune_partner(settings, folder.name, now)
    log.info("items_pruned", pruned=pruned, days=settings.items_days, path=str(settings.items_path))
    return pruned


def prune_partner(settings: RetentionSettings, partner: str, now: Instant, *, dry_run: bool = False) -> int:
    """Remove the kept copies of `partner` older than `items_days` (or, `dry_run`, only count them); how many."""
    cutoff = now - settings.items_days * _DAY
    folder = settings.items_path / partner
    pruned = 0
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        try:
            if path.is_file() and path.stat().st_mtime_ns // 1000 <= cutoff:
                if not dry_run:
                    path.unlink()
                pruned += 1
        except FileNotFoundError:  # removed meanwhile (another worker sharing the folder)
            continue
    return pruned
