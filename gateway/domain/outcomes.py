"""What became of an inbound item (a flat file or a feed page): the words the ledger, the reports and the logs use.

Pure words, kept here so that every layer (the store that writes them, the services that decide them, the CLI
and the API that show them) names them from one place. The values are what the store holds and what is printed:
they never change.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What became of one inbound item."""

    APPLIED = "applied"  # its rows applied (some may have been refused alone, and listed)
    REJECTED = "rejected"  # refused whole: nothing applied, every problem listed
    DUPLICATE = "duplicate"  # the same content applied already: nothing applied again
    EMPTY = "empty"  # a feed page without items: nothing to apply, nothing recorded
    QUARANTINED = "quarantined"  # a source file that kept failing, set aside until released
    RELEASED = "released"  # a quarantined file put back in line (`gateway ledger release`)
    BUNDLED = "bundled"  # a file applied as a member of a bundle (the bundle's own entry is `applied`)
    TRANSPORT_ERROR = "transport_error"  # a pickup's word, never the ledger's: the file stays, to be tried again
