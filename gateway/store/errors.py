"""The store's own errors: what a use case may catch, whatever database is behind the store.

The adapter turns its driver's errors into these at its edge (gateway.store.sql.errors); nothing above the store
ever sees a driver's exception.
"""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do what was asked (unreachable, corrupt, locked beyond patience)."""


class StoreBusy(StoreError):
    """Another worker holds the store; the operation may succeed later."""


class StoreContention(StoreBusy):
    """The database rolled the transaction back to untie it from another one (a deadlock, a serialization
    failure): nothing of it was kept, and running it again from the start may well succeed."""


class Conflict(StoreError):
    """A uniqueness rule of the store was hit."""


class AlreadyApplied(Conflict):
    """The same content was applied for the same partner and kind by someone else meanwhile."""
