"""The audit sink's decoding of a message (entail.audit_sink.decode_payload): pydantic's
JSON parser on the hot path, the standard library's reading and reasons for everything else."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from entail.audit_sink import decode_payload


def event(data: bytes) -> dict[str, Any]:
    return {"message": {"data": base64.b64encode(data).decode(), "messageId": "1"}}


def test_a_record_is_decoded() -> None:
    record = {"decision_id": "dec_1", "facts": {"p": [[1, "é"]]}, "explain": False}
    assert decode_payload(event(json.dumps(record).encode())) == record


def test_what_orjson_refuses_but_json_reads_is_decoded_as_before() -> None:
    # integers past 64 bits: orjson reads them as floats, the standard library
    # exactly; the record validation decides (as it did before orjson)
    assert decode_payload(event(b'{"decision_id": "dec_1", "n": 123456789012345678901234567890}')) == {
        "decision_id": "dec_1",
        "n": 123456789012345678901234567890,
    }
    assert decode_payload(event(b'{"n": -9223372036854775809}')) == {"n": -9223372036854775809}
    assert decode_payload(event(b'{"n": 9223372036854775807}')) == {"n": 9223372036854775807}
    nan = decode_payload(event(b'{"x": NaN}'))["x"]  # orjson refused NaN; json reads it, as before
    assert nan != nan


def test_a_record_is_read_the_way_the_standard_library_reads_it() -> None:
    """The hot path reads what ``json.loads`` reads, value for value: long integers
    exactly (no scan for digit runs any more), the last of repeated keys, escapes,
    and a lone surrogate through the standard library."""
    for data in (
        b'{"n": 18446744073709551616, "m": [1234567890123456789012, -1e400], "s": "\\u00e9\\n"}',
        b'{"a": 1, "a": 2, "f": 0.1, "g": 1e-7, "h": 12345678901234567890.5}',
        b'{"x": "\\ud800"}',
        b'{"proof": {"facts": [["c1", 1000000, "salary"]], "hash": "0123456789012345678901"}}',
    ):
        assert decode_payload(event(data)) == json.loads(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe{", "message data is not UTF-8"),
        (b"{not json", "message data is not JSON"),
        (b"[1, 2]", "message data is a JSON list, not an object"),
        (b'"text"', "message data is a JSON str, not an object"),
    ],
)
def test_undecodable_data_keeps_its_reason_and_raw_text(data: bytes, reason: str) -> None:
    decoded = decode_payload(event(data))
    assert set(decoded) == {"raw", "error"}
    assert decoded["error"].startswith(reason)
    assert decoded["raw"] == data.decode("utf-8", errors="replace")


def test_an_object_with_the_keys_of_an_error_is_still_a_payload() -> None:
    payload = {"raw": "x", "error": "y"}
    assert decode_payload(event(json.dumps(payload).encode())) == payload
