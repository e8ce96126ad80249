"""Queries are checked at submission against the ruleset and the case facts: a
query naming a predicate neither holds, or a known one with another number of
arguments, can only ever answer nothing. The engine says so in the answer's
diagnostics (a warning, as for a draft in the playground); a decision request
gets a 422 with the column and the closest known predicate instead, before a
decision is recorded that could never mean anything."""

from __future__ import annotations

from typing import Any

from entail.reasoning.bindings import Signature
from entail.reasoning.query import parse_query
from entail.reasoning.query_check import query_diagnostics

from .problems import Problem

# query text -> its signature: a request's queries are parsed once (the shape check,
# then the check against the ruleset), and the same few queries come again and again
_SIGNATURES: dict[str, Signature] = {}
_SIGNATURES_MAX = 4096
_SIGNATURE_TEXT_MAX = 1024  # a longer query is parsed each time, never kept


def query_signature(text: str) -> Signature:
    """The query's predicate and arity; raises what :func:`parse_query` raises (the
    column of the problem) for a query that does not parse."""
    found = _SIGNATURES.get(text)
    if found is None:
        found = parse_query(text).signature
        if len(text) <= _SIGNATURE_TEXT_MAX:
            if len(_SIGNATURES) >= _SIGNATURES_MAX:
                _SIGNATURES.clear()
            _SIGNATURES[text] = found
    return found


def _fact_signatures(facts: dict[str, Any]) -> tuple[list[Signature], set[str]]:
    """The case facts' signatures, and the names given with no rows (any arity)."""
    sigs: list[Signature] = []
    open_names: set[str] = set()
    for name, rows in facts.items():
        if isinstance(rows, list) and rows and isinstance(rows[0], list):
            sigs.append((name, len(rows[0])))
        else:
            open_names.add(name)
    return sigs, open_names


def check_queries(
    query: list[str], arities: dict[str, int] | None, facts: dict[str, Any], where: str
) -> None:
    """422 invalid-query for the first query that cannot have an answer. Needs the
    ruleset's arities: without them (the compute pool busy) nothing is checked
    here, and the answer carries the engine's warning instead. Queries are
    already known to parse (``_check_case``)."""
    if arities is None:
        return
    sigs, open_names = _fact_signatures(facts)
    known = [*arities.items(), *sigs]
    answerable = set(known)
    for i, text in enumerate(query):
        # what query_diagnostics finds nothing wrong with: a known signature
        if query_signature(text) in answerable:
            continue
        found = query_diagnostics(text, known)
        if not found:
            continue
        if parse_query(text).predicate in open_names:
            continue
        d = found[0]
        pointer = f"{where}/query/{i}"
        raise Problem(
            422,
            "invalid-query",
            "Invalid query",
            f"{pointer}: query {text.strip()!r} at column {d.column}: {d.message}",
            pointer=pointer,
            diagnostics=[{**d.to_json(), "rendered": d.render()}],
        )
