"""Item outcomes: the words the ledger holds and the CLI prints, named once."""

from __future__ import annotations

import json

from gateway.domain.outcomes import Outcome


def test_the_outcomes_are_the_words_the_ledger_and_the_reports_use() -> None:
    """The values are stored and printed: they never change."""
    assert [o.value for o in Outcome] == [
        "applied",
        "rejected",
        "duplicate",
        "empty",
        "quarantined",
        "released",
        "bundled",
        "transport_error",
    ]


def test_an_outcome_is_its_word_in_json_text_and_comparisons() -> None:
    """JSON output, f-strings and comparisons with stored strings see the plain word."""
    assert json.dumps({"outcome": Outcome.QUARANTINED}) == '{"outcome": "quarantined"}'
    assert f"{Outcome.TRANSPORT_ERROR}" == "transport_error"
    assert Outcome.APPLIED == "applied"
    assert Outcome("rejected") is Outcome.REJECTED
