"""Decision records to and from JSON text, for proofs of any depth the service allows.

Pydantic's JSON encoder and parser stop at a fixed nesting depth (about 200 to
255 levels, not configurable), and a proof nests about two JSON levels per step:
a proof of ``proof_depth`` 200 is some 400 levels deep. So records are parsed by
the standard library, whose only bound is the interpreter's recursion limit
(1000 by default, far above the service's cap on ``proof_depth``; see
:data:`MAX_JSON_DEPTH`), and encoded by pydantic while they are shallow enough
for it, else by the standard library with the ``answers`` (where the proofs
live) handed over as they are.

Every path that stores, publishes or answers a record uses these functions:
the decision store, the worker's ``decisions`` messages and the API responses.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import PydanticSerializationError

from .models import DecisionRecord

MAX_JSON_DEPTH = 500
"""The deepest JSON a record may nest: BigQuery's JSON type allows 500 levels. The
service caps ``proof_depth`` (200, about 2 levels per step, ~406 levels in a
record's ``answers`` column) below it; a test keeps the two consistent."""


def record_dict(
    record: DecisionRecord, *, by_alias: bool = True, exclude: set[str] | None = None
) -> dict[str, Any]:
    """The record as plain JSON-ready Python values; the answers are the record's own
    lists and dicts (not copied, not walked by pydantic)."""
    out = record.model_dump(mode="json", by_alias=by_alias, exclude={"answers", *(exclude or set())})
    out["answers"] = record.answers
    return out


def dump_record(record: DecisionRecord) -> str:
    """The record as compact JSON text (``schema`` by its alias), any proof depth.

    Pydantic's encoder first (about twice as fast), the standard library's for a
    record too deep for it; both give the same document."""
    try:
        return record.model_dump_json(by_alias=True)
    except PydanticSerializationError:
        return dumps(record_dict(record))


def load_record(text: str | bytes) -> DecisionRecord:
    """A record from :func:`dump_record`'s text (or any JSON of the same shape).

    ValueError (a ``json.JSONDecodeError`` or pydantic ``ValidationError``) when it is not one."""
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("a decision record is a JSON object")
    return DecisionRecord.model_validate(doc)


def dumps(value: Any) -> str:
    """Compact JSON text with the standard library's encoder (no pydantic depth bound)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_depth(value: Any) -> int:
    """How deep ``value`` nests (a scalar is 1, ``[]`` and ``{}`` are 1), counted
    without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest
