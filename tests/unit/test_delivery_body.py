"""The bytes of a delivery request: an ATS batch in the reference shape is written directly, and must be the very
bytes json.dumps writes of the reference body; an adapter's own `item` is still used."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.atp import SchedulePoint
from gateway.domain.messages import MessageKind, OutboxState
from gateway.settings import ApiSettings
from gateway.store.records import OutboxRecord
from gateway.transport.http import Message, PartnerApi

_SETTINGS = ApiSettings(base_url="http://127.0.0.1:9/api")
_INSTANTS = st.integers(min_value=0, max_value=253_402_300_799_999_999)  # up to 9999-12-31T23:59:59.999999Z


def _record(
    number: int,
    key: str,
    value: int | None,
    as_of: int | None,
    created_at: int,
    schedule: tuple[SchedulePoint, ...] | None = None,
) -> OutboxRecord:
    pending = OutboxState.PENDING
    record = OutboxRecord(number, "acme", MessageKind.ATS, key, value, as_of, None, None, created_at, pending, 0)
    return record._replace(schedule=schedule)


_POINTS = st.builds(SchedulePoint, st.dates(), st.integers(min_value=0, max_value=2**62))
_RECORDS = st.builds(
    _record,
    st.integers(min_value=1, max_value=2**62),
    st.text(max_size=30),  # quotes, backslashes, control and non-ASCII characters
    st.none() | st.integers(min_value=-(2**62), max_value=2**62),
    st.none() | _INSTANTS,
    _INSTANTS,
    st.none() | st.lists(_POINTS, max_size=8).map(tuple),  # a SKU with dated supply: its schedule, maybe empty
)


@given(st.lists(_RECORDS, max_size=40))
def test_an_ats_batch_is_the_bytes_json_dumps_writes_of_the_reference_body(records: list[OutboxRecord]) -> None:
    api = PartnerApi("acme", _SETTINGS, environ={})
    expected = json.dumps(api.body(MessageKind.ATS, records), separators=(",", ":")).encode()
    assert api.encode(MessageKind.ATS, records) == expected


class _Renaming(PartnerApi):
    def item(self, message: Message) -> dict[str, Any]:
        return {"article": message.key, "available": message.value}


def test_an_adapter_that_maps_the_items_has_its_own_shape_sent() -> None:
    records = [_record(1, "SKU-1", 4, 0, 0), _record(2, 'SKU "2"', None, None, 0)]
    sent = json.loads(_Renaming("acme", _SETTINGS, environ={}).encode(MessageKind.ATS, records))
    assert sent == {"items": [{"article": "SKU-1", "available": 4}, {"article": 'SKU "2"', "available": None}]}


def test_an_item_without_a_schedule_has_exactly_the_fields_it_always_had() -> None:
    """A SKU without dated supply: the five fields of the reference item, no `schedule` key at all."""
    api = PartnerApi("acme", _SETTINGS, environ={})
    [item] = json.loads(api.encode(MessageKind.ATS, [_record(1, "SKU-1", 4, 0, 0)]))["items"]
    assert list(item) == ["message_id", "sku", "ats", "as_of", "computed_at"]


def test_a_schedule_is_sent_beside_the_value_as_dates_and_ats() -> None:
    """A SKU with dated supply: `schedule` lists each point's date (YYYY-MM-DD) and ATS, in order; empty stays []."""
    points = (SchedulePoint(date(2026, 12, 10), 10), SchedulePoint(date(2026, 12, 12), 70))
    api = PartnerApi("acme", _SETTINGS, environ={})
    records = [_record(1, "EGGS", 0, 0, 0, points), _record(2, "HAT", 3, 0, 0, ())]
    items = json.loads(api.encode(MessageKind.ATS, records))["items"]
    assert [item["schedule"] for item in items] == [
        [{"date": "2026-12-10", "ats": 10}, {"date": "2026-12-12", "ats": 70}],
        [],
    ]
