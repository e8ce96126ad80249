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

``entail.row.v2`` (issue 16, datasets) is v1's columns plus ``datasets`` (the
dataset versions a decision read), prefixed ``entail.row.v2\n``, for a row
whose ``datasets`` is not null. A row that read no dataset (every row stored
before the column existed among them) is encoded exactly as v1, prefix and
all: so a root over v1 rows still verifies, byte for byte, and a v2 root's
leaves are each v1 or v2 by the row's content. New roots record ``entail.row.v2``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .schema import DECISIONS_TABLE, format_timestamp, parse_timestamp

ENCODING = "entail.row.v2"  # what new roots record
V1 = "entail.row.v1"
V2 = "entail.row.v2"

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
#: v2: v1's columns and the dataset versions a decision read. A later column needs v3.
V2_COLUMNS = (*V1_COLUMNS, "datasets")
_PREFIXES = {V1: (V1 + "\n").encode(), V2: (V2 + "\n").encode()}
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


def row_version(row: Mapping[str, Any]) -> str:
    """The encoding of a row: v2 when it read datasets, else v1."""
    return V2 if canonical_value("datasets", row.get("datasets")) is not None else V1


def encode_row(row: Mapping[str, Any]) -> bytes:
    """The leaf bytes of a decisions row (wire form, or as a store returns it).

    Every column of its encoding (:func:`row_version`) is encoded; a column missing
    from ``row`` (a row from before the column existed) is null."""
    version = row_version(row)
    columns = V2_COLUMNS if version == V2 else V1_COLUMNS
    doc = {name: canonical_value(name, row.get(name)) for name in columns}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _PREFIXES[version] + text.encode("utf-8")


# --- the same encoding computed by DuckDB ----------------------------------------------
#
# Building a day's root means encoding and hashing every row of the day; in Python
# that is ~100 µs a row (JSON decoding and re-encoding), in DuckDB's vectorised
# string functions a small fraction of it. The SQL below yields exactly the
# bytes of :func:`encode_row` for the rows the local store holds, because
#
# - JSON columns are stored as canonical JSON text (``decision_to_row`` writes
#   ``canonical_json``), so the stored text *is* the canonical value;
# - ``to_json`` escapes strings as Python's ``json.dumps(ensure_ascii=False)``
#   does, except that it writes ``\u001F`` where Python writes ``\u001f``: a row
#   with such a control character in a STRING column gets no SQL leaf
#   (``python_fallback``) and is encoded by :func:`encode_row` instead.
#
# tests/unit/audit/test_trail_merkle.py checks SQL and Python agree, byte for byte.

#: control characters whose ``\uXXXX`` escape has a hex letter (case differs)
_LETTER_ESCAPES = "[\x0b\x0e\x0f\x1a-\x1f]"


def _sql_value(column: str, alias: str) -> str:
    ref = f'{alias}"{column}"'
    if column in _JSON_COLUMNS:
        return f"coalesce({ref}::VARCHAR, 'null')"
    if column in _TIME_COLUMNS:
        return f"""coalesce('"' || strftime({ref}, '%Y-%m-%dT%H:%M:%S.%gZ') || '"', 'null')"""
    return f"coalesce(to_json({ref})::VARCHAR, 'null')"


def encoding_sql(alias: str = "", *, leaf_prefix: bool = False) -> str:
    """A DuckDB expression giving a ``decisions`` row's encoding (prefix included),
    or NULL when the row needs :func:`encode_row` (see above). The session time
    zone must be UTC (the store sets it)."""
    prefix = alias + "." if alias else ""

    def body(columns: tuple[str, ...]) -> str:
        parts: list[str] = []
        for i, name in enumerate(sorted(columns)):  # json.dumps(sort_keys=True): code-point order
            parts += [f"""'{"," if i else ""}"{name}":'""", _sql_value(name, prefix)]
        # one concat() of all the parts: chained || copies the growing string once per part
        return ", ".join(parts)

    strings = [
        f"coalesce({prefix}\"{c.name}\", '')"
        for c in DECISIONS_TABLE.columns
        if c.type == "STRING" and c.name in V2_COLUMNS
    ]
    fallback = f"regexp_matches(concat({', '.join(strings)}), '{_LETTER_ESCAPES}')"
    lead = "chr(0), " if leaf_prefix else ""  # the Merkle leaf's 0x00, in the same concat
    v1 = f"concat({lead}'{V1}', chr(10), '{{', {body(V1_COLUMNS)}, '}}')"
    v2 = f"concat({lead}'{V2}', chr(10), '{{', {body(V2_COLUMNS)}, '}}')"
    return f'CASE WHEN {fallback} THEN NULL WHEN {prefix}"datasets" IS NULL THEN {v1} ELSE {v2} END'


def leaf_hash_sql(alias: str = "") -> str:
    """SHA-256(0x00 || encoding) as hex, in DuckDB (NULL: use Python)."""
    return f"sha256({encoding_sql(alias, leaf_prefix=True)})"
