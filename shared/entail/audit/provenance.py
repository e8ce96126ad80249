"""Reverse provenance: which rules and which base facts a decision's proofs used,
and which reason codes it cited — stored per decision so "which decisions used
rule R of version V / fact F / reason code C" is one indexed filter, not a
replay of years of proofs.

Three ``decisions`` columns, each a STRING of space-separated tokens with a
space at both ends (``" 4 14 "``), sorted and without repeats, so that
"contains ``' 14 '``" is an exact token match in DuckDB and BigQuery alike and
BigQuery can cluster on the column and index it for ``SEARCH``:

- ``rule_ids``: the ``rule.index`` of every rule node in the answers' proofs —
  an index among the rules of the decision's own ruleset version, so a rule is
  named by (ruleset name, version, index);
- ``fact_hashes``: :func:`fact_hash` of every ``input`` and ``ruleset_fact``
  node (and aggregate condition facts) in the proofs;
- ``reason_codes``: the codes of the answers' reasons when the ruleset has
  reason templates (``%@reason code=L02 ...``, reasoning/reasons.py: every answer
  then carries ``reasons``); otherwise every symbolic constant among the answers'
  arguments (``reason("eve", high_dti)`` cites ``high_dti``).

Proofs exist only for decisions asked with ``explain``: without them
``rule_ids`` and ``fact_hashes`` are NULL ("not known"), never empty ("none
used"); ``reason_codes`` needs no proof and is always set for a succeeded
decision.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: one token: rule indexes, 16-hex fact hashes, constants (clingo identifiers)
_TOKEN = re.compile(r"^[A-Za-z0-9_']+$")


def fact_hash(atom: str) -> str:
    """The content hash of a ground fact: sha256 of its clingo text with the
    spaces outside string literals removed, first 16 hex digits."""
    return hashlib.sha256(normalize_atom(atom).encode("utf-8")).hexdigest()[:16]


def normalize_atom(atom: str) -> str:
    """``income( "eve" , 5)`` → ``income("eve",5)``: the engine's printed form of a
    ground atom has no spaces outside strings."""
    out: list[str] = []
    in_string = escaped = False
    for ch in atom.strip():
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif not ch.isspace():
            out.append(ch)
    return "".join(out)


def tokens(values: Iterable[str | int]) -> str:
    """The column form: sorted unique tokens, a space at both ends."""
    items = sorted({str(v) for v in values}, key=lambda s: (len(s), s) if s.isdigit() else (1 << 30, s))
    return " " + " ".join(items) + " " if items else " "


def token_filter(value: str | int) -> str:
    """The substring a column must contain to hold token ``value``."""
    text = str(value)
    if not _TOKEN.match(text):
        raise ValueError(f"{text!r} is not a rule index, fact hash or reason code")
    return f" {text} "


@dataclass(frozen=True)
class Provenance:
    rule_ids: str | None
    fact_hashes: str | None
    reason_codes: str | None


def _walk_proof(node: Any, rules: set[int], facts: set[str]) -> None:
    stack = [node]
    while stack:
        n = stack.pop()
        if not isinstance(n, dict):
            continue
        kind = n.get("kind")
        if kind == "rule":
            rule = n.get("rule")
            if isinstance(rule, dict) and isinstance(rule.get("index"), int):
                rules.add(rule["index"])
        elif kind in ("input", "ruleset_fact", "dataset_fact") and isinstance(n.get("fact"), str):
            facts.add(fact_hash(n["fact"]))
        body = n.get("body")
        if isinstance(body, list):
            stack.extend(body)
        elements = n.get("elements")
        for element in elements if isinstance(elements, list) else ():
            facts_of = element.get("facts") if isinstance(element, dict) else None
            if isinstance(facts_of, list):
                for f in facts_of:
                    # an aggregate's condition facts are atoms (text) or fact nodes
                    if isinstance(f, str):
                        facts.add(fact_hash(f))
                    else:
                        stack.append(f)


def _constants(term: Any, out: set[str]) -> None:
    """Every ``{"const": name}`` inside a typed JSON term (iteratively: any depth)."""
    stack = [term]
    while stack:
        t = stack.pop()
        if isinstance(t, dict):
            if isinstance(t.get("const"), str):
                out.add(t["const"])
            stack.extend(v for v in t.values() if isinstance(v, list | dict))
        elif isinstance(t, list):
            stack.extend(t)


def of_answers(answers: list[dict[str, Any]] | None, *, explain: bool) -> Provenance:
    """The provenance columns of a decision from its ``answers`` (None when it failed)."""
    if answers is None:
        return Provenance(None, None, None)
    rules: set[int] = set()
    facts: set[str] = set()
    codes: set[str] = set()
    templated: set[str] = set()
    has_templates = False
    proved = False
    # rows arrive from a topic: tolerate any shape, derive what is there
    for query in answers:
        found = query.get("answers") if isinstance(query, dict) else None
        for answer in found if isinstance(found, list) else ():
            if not isinstance(answer, dict):
                continue
            _constants(answer.get("args"), codes)
            reasons = answer.get("reasons")
            if isinstance(reasons, list):
                has_templates = True
                templated.update(
                    r["code"] for r in reasons if isinstance(r, dict) and isinstance(r.get("code"), str)
                )
            proof = answer.get("proof")
            if proof is not None:
                proved = True
                _walk_proof(proof, rules, facts)
    codes = {c for c in (templated if has_templates else codes) if _TOKEN.match(c)}
    known = explain or proved
    return Provenance(
        tokens(rules) if known else None,
        tokens(facts) if known else None,
        tokens(codes),
    )


def parse_tokens(column: str | None) -> list[str]:
    return column.split() if column else []
