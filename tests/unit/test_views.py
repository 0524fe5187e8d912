"""The JSON shapes (gateway/views.py): each names what the platform API documents, and the command line's older
names for the explanation stay beside the new ones for one release."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from gateway import views
from gateway.cli import ats as cli_ats
from gateway.domain import instant
from gateway.domain.caps import CapSource
from gateway.domain.outcomes import Outcome
from gateway.platform_api.schemas import AtsOut, CapIn, ChangeOut, ChannelOut, WarningOut
from gateway.service.channels import ChannelView
from gateway.service.engine import AtsChange
from gateway.service.items import ItemWarning
from gateway.service.queries import AllocatingLine, AtsView, Explanation
from gateway.store.records import CapRow, LedgerRecord

AS_OF = instant.parse("2019-06-25T12:00:00Z")
VIEW = AtsView(sku="EGGS", stock=10, allocated=12, ats=0, as_of=AS_OF)
CHANNEL = ChannelView("EGGS", "paris-11", "2026-12-01", ats=0, cap=5, ordered=8, source=CapSource.ASSEMBLY, sku_ats=-2)
LINE = AllocatingLine("O1", "closed", 5, 4, 4, "closed line confirmed after the inventory timestamp")
EXPLANATION = Explanation(VIEW, set_by=7, lines=(LINE,), non_allocating=2, mode="time_based")
PREDATES = ItemWarning("snapshot_predates_confirmation", ("EGGS", "HAM"), 3)


@pytest.mark.parametrize(
    ("body", "model"),
    [
        (views.ats(VIEW), AtsOut),
        (views.channel(CHANNEL), ChannelOut),
        (views.ats_change(AtsChange("EGGS", None, 3)), ChangeOut),
        (views.warnings([PREDATES])[0], WarningOut),
    ],
    ids=["ats", "channel", "ats_change", "warning"],
)
def test_a_view_names_exactly_the_fields_of_the_api_model_that_documents_it(
    body: dict[str, object], model: type[BaseModel]
) -> None:
    """The view and the OpenAPI model agree name for name, and the model reads the view back unchanged."""
    assert list(body) == list(model.model_fields)
    assert model.model_validate(body).model_dump() == body


def test_a_cap_row_is_shown_as_put_caps_takes_it() -> None:
    """`gateway cap show --json` names a setting as `PUT caps` does (`max` None: no maximum)."""
    body = views.cap(CapRow("EGGS", "paris-11", "*", None))
    assert list(body) == list(CapIn.model_fields)
    assert body == {"sku": "EGGS", "assembly": "paris-11", "collection": "*", "max": None}


def test_an_explained_channel_adds_where_its_cap_comes_from_and_the_published_sku_ats() -> None:
    """--explain adds cap_source and sku_ats (never negative) after the channel's own fields."""
    assert views.channel(CHANNEL, explained=True) == views.channel(CHANNEL) | {
        "cap_source": "assembly default",
        "sku_ats": 0,
    }


def test_the_explanation_carries_the_api_names() -> None:
    """set_by_ledger_entry and non_allocating_lines, each line with the rule that makes it count."""
    assert views.explanation(EXPLANATION) == {
        "sku": "EGGS",
        "mode": "time_based",
        "stock": 10,
        "as_of": "2019-06-25T12:00:00Z",
        "allocated": 12,
        "ats": 0,
        "set_by_ledger_entry": 7,
        "lines": [
            {
                "order_id": "O1",
                "status": "closed",
                "quantity": 5,
                "confirmed_quantity": 4,
                "units": 4,
                "rule": "closed line confirmed after the inventory timestamp",
            }
        ],
        "non_allocating_lines": 2,
    }


def test_the_cli_keeps_each_old_name_beside_its_new_one_with_the_same_value() -> None:
    """set_by_ledger_id next to set_by_ledger_entry, lines_not_allocating next to non_allocating_lines."""
    body = views.explanation(EXPLANATION)
    both = cli_ats.with_old_names(body)
    assert {k: v for k, v in both.items() if k not in cli_ats.OLD_NAMES} == body
    assert cli_ats.OLD_NAMES == {
        "set_by_ledger_id": "set_by_ledger_entry",
        "lines_not_allocating": "non_allocating_lines",
    }
    for old, new in cli_ats.OLD_NAMES.items():
        assert both[old] == both[new]
        names = list(both)
        assert names.index(old) == names.index(new) + 1
    json.dumps(both)  # JSON-ready as it is


def test_a_warning_names_its_code_its_first_skus_and_how_many_in_all() -> None:
    """The one shape of every `warnings` list: the code, the SKUs named, the count, and the words."""
    [body] = views.warnings([PREDATES])
    assert body == {
        "warning": "snapshot_predates_confirmation",
        "skus": ["EGGS", "HAM"],
        "count": 3,
        "message": "3 level(s) older than the last confirmation the gateway applied for their SKU"
        " (EGGS, HAM and 1 more): applied, but such a level may put units already sold back on sale",
    }
    json.dumps(body)


def _entry(report: str | None) -> LedgerRecord:
    return LedgerRecord(1, "p", "stock", "s.csv", "ab", 10, 0, 0, Outcome.APPLIED, 1, 0, 0, None, report)


def test_a_ledger_entry_shows_the_warnings_its_report_keeps_and_none_without_them() -> None:
    """The entry's `warnings` are its report's, in the same shape; an entry without a report, or whose report
    predates warnings, shows an empty list."""
    report = json.dumps({"refused": [], "warnings": views.warnings([PREDATES])})
    assert views.ledger_entry(_entry(report))["warnings"] == views.warnings([PREDATES])
    assert views.ledger_entry(_entry(None))["warnings"] == []
    assert views.ledger_entry(_entry(json.dumps({"refused": []})))["warnings"] == []
