"""The canonical byte encoding of one ``decisions`` row: what a Merkle leaf hashes.

``entail.row.v1`` (docs/auditors.md is the normative description):

- an object with every column of the row under its column name — all the
  columns the store keeps, so no stored value can change unnoticed;
- JSON columns as their decoded value (the text a store returns may differ in
  spacing or key order; the value may not), TIMESTAMP columns in the
  ``2026-11-28T10:00:00.000Z`` form, INT64 as integers, BOOL as true/false,
  absent values as null;
- serialised as JSON with keys sorted, no whitespace, UTF-8 (not \\u-escaped),
  prefixed with ``entail.row.v1\\n``.

The prefix names the version: a later encoding gets a new name, and a root
records the encoding of its leaves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .schema import DECISIONS_TABLE, format_timestamp, parse_timestamp

ENCODING = "entail.row.v1"

#: The columns v1 covers: every column of ``decisions`` when v1 was defined. A
#: column added to the table needs a new encoding (a test keeps the two equal),
#: so an old root never silently stops covering a stored value.
V1_COLUMNS = (
    "decision_id",
    "tenant",
    "ruleset_name",
    "ruleset_version",
    "ruleset_hash",
    "request_hash",
    "status",
    "facts",
    "query",
    "explain",
    "answers",
    "result_hash",
    "error",
    "stats",
    "engine_version",
    "worker",
    "cached",
    "cached_from",
    "submitted_at",
    "started_at",
    "completed_at",
    "masked_predicates",
    "inserted_at",
    "rule_ids",
    "fact_hashes",
    "reason_codes",
)
_PREFIX = (ENCODING + "\n").encode()
_JSON_COLUMNS = frozenset(c.name for c in DECISIONS_TABLE.columns if c.type == "JSON")
_TIME_COLUMNS = frozenset(c.name for c in DECISIONS_TABLE.columns if c.type == "TIMESTAMP")
_INT_COLUMNS = frozenset(c.name for c in DECISIONS_TABLE.columns if c.type == "INT64")
_BOOL_COLUMNS = frozenset(c.name for c in DECISIONS_TABLE.columns if c.type == "BOOL")


def canonical_value(column: str, value: Any) -> Any:
    """One column's value in the encoding's form."""
    if value is None:
        return None
    if column in _JSON_COLUMNS:
        return json.loads(value) if isinstance(value, str | bytes) else value
    if column in _TIME_COLUMNS:
        dt = value if isinstance(value, datetime) else parse_timestamp(value)
        return format_timestamp(dt)
    if column in _INT_COLUMNS:
        return int(value)
    if column in _BOOL_COLUMNS:
        return bool(value)
    return value


def encode_row(row: Mapping[str, Any]) -> bytes:
    """The leaf bytes of a decisions row (wire form, or as a store returns it).

    Every column of :data:`V1_COLUMNS` is encoded; a column missing from ``row`` (a row
    from before the column existed) is null."""
    doc = {name: canonical_value(name, row.get(name)) for name in V1_COLUMNS}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _PREFIX + text.encode("utf-8")
