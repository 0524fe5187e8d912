"""The JSON shapes (gateway/views.py): each names what the platform API documents, and the command line's older
names for the explanation stay beside the new ones for one release."""

from __future__ import annotations

import json
from datetime import date

import pytest
from pydantic import BaseModel

from gateway import views
from gateway.cli import ats as cli_ats
from gateway.domain import instant
from gateway.domain.caps import CapSource, EffectiveCap, OverCap
from gateway.domain.outcomes import Outcome
from gateway.platform_api.schemas import (
    AtpOut,
    AtsOut,
    CapIn,
    CapLineOut,
    CapOut,
    ChangeOut,
    ChannelOut,
    ErasedCapOut,
    OverCapOut,
    WarningOut,
)
from gateway.service.channels import CapEdit, CapLine, ChannelView, Erased
from gateway.service.commands import CapDone
from gateway.service.items import ItemWarning
from gateway.service.queries import AllocatingLine, AtpView, AtsView, Explanation
from gateway.service.snapshots import AtsChange
from gateway.store.records import LedgerRecord

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
        (views.atp(AtpView(VIEW, date(2026, 12, 15), -2)), AtpOut),
        (views.channel(CHANNEL), ChannelOut),
        (views.ats_change(AtsChange("EGGS", None, 3)), ChangeOut),
        (views.warnings([PREDATES])[0], WarningOut),
    ],
    ids=["ats", "atp", "channel", "ats_change", "warning"],
)
def test_a_view_names_exactly_the_fields_of_the_api_model_that_documents_it(
    body: dict[str, object], model: type[BaseModel]
) -> None:
    """The view and the OpenAPI model agree name for name, and the model reads the view back unchanged."""
    assert list(body) == list(model.model_fields)
    assert model.model_validate(body).model_dump() == body


def test_a_cap_is_shown_as_put_caps_takes_it_then_what_it_holds() -> None:
    """`gateway cap show --json` and `GET caps` name the setting as `PUT caps` does (`max` None: no maximum), then
    where it comes from, the units ordered, what is left (negative: over the cap) and whether it is over."""
    over = CapLine("EGGS", "paris-11", "2026-12-01", EffectiveCap(5, CapSource.ASSEMBLY), 8, -3)
    body = views.cap(over)
    assert list(body)[: len(CapIn.model_fields)] == list(CapIn.model_fields)
    assert list(body) == list(CapLineOut.model_fields)
    assert CapLineOut.model_validate(body).model_dump() == body
    assert body == {
        "sku": "EGGS",
        "assembly": "paris-11",
        "collection": "2026-12-01",
        "max": 5,
        "cap_source": "assembly default",
        "ordered": 8,
        "remaining": -3,
        "over_cap": True,
    }
    default = views.cap(CapLine("EGGS", "paris-11", "*", EffectiveCap(5, CapSource.ASSEMBLY), None, None))
    assert (default["ordered"], default["remaining"], default["over_cap"]) == (None, None, False)
    free = views.cap(CapLine("EGGS", "paris-11", "c", EffectiveCap(None, CapSource.COLLECTION), 40, None))
    assert (free["max"], free["remaining"], free["over_cap"]) == (None, None, False)


def test_what_a_cap_command_did_is_the_api_answer_less_the_partner() -> None:
    """`cap set --json` / `cap clear --json` and the answers to `PUT caps` / `DELETE caps` carry the same names:
    the cap now in force, the settings erased, the collections over their cap, the ongoing ones, the ATS moved."""
    edit = CapEdit(
        "EGGS",
        "paris-11",
        "*",
        EffectiveCap(5, CapSource.ASSEMBLY),
        erased=(Erased("2026-12-01", 10), Erased("2026-12-08", None)),
        over_cap=(OverCap("2026-12-01", 8, 5),),
        ongoing=("2026-12-08",),
    )
    body = views.cap_done(CapDone(edit, []))
    assert set(CapOut.model_fields) == {"partner", "order_id", *body}
    answer = {"partner": "acme", "order_id": None} | body
    assert CapOut.model_validate(answer).model_dump() == answer
    assert body == {
        "sku": "EGGS",
        "assembly": "paris-11",
        "collection": "*",
        "max": 5,
        "cap_source": "assembly default",
        "erased": [{"collection": "2026-12-01", "max": 10}, {"collection": "2026-12-08", "max": None}],
        "over_cap": [{"collection": "2026-12-01", "ordered": 8, "cap": 5}],
        "ongoing": ["2026-12-08"],
        "ats_changes": [],
    }
    assert [list(e) for e in body["erased"]] == [list(ErasedCapOut.model_fields)] * 2  # type: ignore[attr-defined]
    assert [list(o) for o in body["over_cap"]] == [list(OverCapOut.model_fields)]  # type: ignore[attr-defined]


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
