"""The bytes of a delivery request: an ATS batch in the reference shape is written directly, and must be the very
bytes json.dumps writes of the reference body; an adapter's own `item` is still used."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.messages import MessageKind, OutboxState
from gateway.settings import ApiSettings
from gateway.store.records import OutboxRecord
from gateway.transport.http import Message, PartnerApi

_SETTINGS = ApiSettings(base_url="http://127.0.0.1:9/api")
_INSTANTS = st.integers(min_value=0, max_value=253_402_300_799_999_999)  # up to 9999-12-31T23:59:59.999999Z


def _record(number: int, key: str, value: int | None, as_of: int | None, created_at: int) -> OutboxRecord:
    pending = OutboxState.PENDING
    return OutboxRecord(number, "acme", MessageKind.ATS, key, value, as_of, None, None, created_at, pending, 0)


_RECORDS = st.builds(
    _record,
    st.integers(min_value=1, max_value=2**62),
    st.text(max_size=30),  # quotes, backslashes, control and non-ASCII characters
    st.none() | st.integers(min_value=-(2**62), max_value=2**62),
    st.none() | _INSTANTS,
    _INSTANTS,
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
