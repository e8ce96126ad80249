"""Masked input predicates: the clear values never leave the request that carried them.

A ruleset version may name input predicates to mask (``"ssn/2"``). Every value
of those facts is replaced by ``hmac-sha256:<hex>`` (keyed by
``ENTAIL_MASK_SECRET``) *before* the decision is stored or its job is put on
the bus, and so is every other occurrence of the same value in the case: the
other facts and the constants of the queries. The engine then evaluates the
masked case. That is why nothing downstream can hold a clear value — not the
job on the stream (and Redis's append-only file), not the decision record, the
answers, the bindings or the proofs, not the audit row: none of them ever had
one. A query on a masked predicate answers the HMAC values.

Because the same clear value always gets the same HMAC, equality and joins
behave as on the clear values; ordering and arithmetic on a masked value do not
(it is a string to the rules): mask identifiers, not quantities.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import logs
from .models import canonical_json
from .reasoning.errors import ProgramError
from .reasoning.parse import parse_atom
from .reasoning.syntax import Minus, Num, Str, Var
from .reasoning.terms import quote

PREFIX = "hmac-sha256:"
_MASKED = re.compile(r"hmac-sha256:[0-9a-f]{64}")


def mask_value(value: Any, secret: str) -> str:
    """The HMAC of one JSON value; a value that already is one is kept (masking twice
    is masking once, so a worker may re-mask a job as a second line of defence)."""
    if is_masked(value):
        return str(value)
    digest = hmac.new(secret.encode(), canonical_json(value).encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest


def is_masked(value: Any) -> bool:
    return isinstance(value, str) and _MASKED.fullmatch(value) is not None


@dataclass(frozen=True)
class MaskedCase:
    facts: dict[str, Any]
    query: list[str]


def masked_values(facts: dict[str, Any], predicates: Iterable[str]) -> dict[str, Any]:
    """Canonical JSON of each clear value in a row of a masked predicate -> the value."""
    wanted = set(predicates)
    found: dict[str, Any] = {}
    for name, rows in facts.items():
        if not isinstance(rows, list):
            continue
        for row in rows:
            if isinstance(row, list) and f"{name}/{len(row)}" in wanted:
                for value in row:
                    if not is_masked(value):
                        found[canonical_json(value)] = value
    return found


def mask_facts(facts: dict[str, Any], predicates: Iterable[str], secret: str) -> dict[str, Any]:
    """The facts with every value of the masked predicates' rows, and every other
    occurrence of such a value anywhere in the facts, replaced by its HMAC.
    The input is not modified."""
    return mask_case(facts, [], predicates, secret).facts


def mask_case(facts: dict[str, Any], query: list[str], predicates: Iterable[str], secret: str) -> MaskedCase:
    """Facts and queries with the masked predicates' values replaced by their HMACs."""
    clear = masked_values(facts, predicates)
    if not clear:
        return MaskedCase(facts, list(query))
    logs.add_redactions(clear.values())  # no log line of this request may quote one
    macs = {key: mask_value(value, secret) for key, value in clear.items()}
    return MaskedCase(
        {name: _mask_rows(rows, macs) for name, rows in facts.items()},
        [_mask_query(q, macs) for q in query],
    )


def _mask_rows(rows: Any, macs: dict[str, str]) -> Any:
    if not isinstance(rows, list):
        return rows
    return [_mask_any(row, macs) for row in rows]


def _mask_any(value: Any, macs: dict[str, str]) -> Any:
    if isinstance(value, list):
        return [_mask_any(v, macs) for v in value]
    if isinstance(value, dict):
        return {k: _mask_any(v, macs) for k, v in value.items()}
    return macs.get(canonical_json(value), value)


def _mask_query(text: str, macs: dict[str, str]) -> str:
    """The query with each constant argument that is a masked value replaced by its
    HMAC string; the text as it was when none is (or when it does not parse: the
    request's own validation reports that)."""
    try:
        atom = parse_atom(text.strip())
    except ProgramError:
        return text
    args: list[str] = []
    changed = False
    for arg in atom.args:
        value: Any = None
        if isinstance(arg, Num | Str):
            value = arg.value
        elif isinstance(arg, Minus) and isinstance(arg.operand, Num):
            value = -arg.operand.value
        mac = None if value is None or isinstance(arg, Var) else macs.get(canonical_json(value))
        if mac is not None:
            changed = True
            args.append(quote(mac))
        else:
            args.append(str(arg))
    if not changed:
        return text
    return f"{atom.predicate}({', '.join(args)})"
