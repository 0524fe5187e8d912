"""What the gateway keeps of the items it applied, and for how long: the staged copy of every applied item, so
that `gateway ledger reapply` can apply its content again on purpose."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gateway.settings.base import Strict


class RetentionSettings(Strict):
    """The kept copies of applied items (`[retention]`)."""

    # one file per applied (or partly refused) item: ITEMS/<partner>/<ledger id>; relative to the configuration
    # file's folder
    items_path: Path = Path("var/items")
    # a kept copy older than this many days is pruned (by the worker, at start and daily); 0 keeps none, and then
    # nothing can be re-applied by its ledger entry
    items_days: int = Field(default=30, ge=0, le=3650)
