"""Stored decision records answered as they are, without parsing them.

A record can be megabytes (answers with proofs, up to ``ENTAIL_RECORD_MAX_BYTES``)
and JSON parsing holds the interpreter lock even in a thread: a few readers of a
big record stalled every other request of the process. The API's answer for a
record is the stored JSON minus its ``schema`` member (:func:`public_text`), and
whether the record is final is read from its head (:func:`head_status`), so
``GET /v1/decisions/{id}``, the SSE ``done`` event and ``wait_ms`` answers never
parse the record.

Records are written by :func:`entail.record_json.dump_record`: compact JSON whose
top-level members come in the model's field order (``schema``, ``decision_id``,
``tenant``, ``ruleset``, ``request_hash``, ``status``, ...), the answers last.
"""

from __future__ import annotations

import re

from .record_json import load_record

HEAD_BYTES = 1024
"""The top-level members up to ``status`` fit in this (ids, names and hashes are bounded)."""

_SCHEMA_MEMBER = re.compile(rb'^\{"schema":"[^"\\]*",')
_STATUS = re.compile(rb'"status":"(pending|running|succeeded|failed)"')
FINAL = frozenset({"succeeded", "failed"})


def head_status(text: bytes) -> str:
    """The record's status, from its head; parsed in full only for a record not
    written by :func:`~entail.record_json.dump_record` (then it is small)."""
    match = _STATUS.search(text, 0, HEAD_BYTES)
    if match is not None:
        return match.group(1).decode()
    return load_record(text).status


def is_final(text: bytes) -> bool:
    return head_status(text) in FINAL


def public_text(text: bytes) -> bytes:
    """The record as the API answers it: the stored JSON without ``schema``."""
    match = _SCHEMA_MEMBER.match(text)
    return b"{" + text[match.end() :] if match is not None else text
