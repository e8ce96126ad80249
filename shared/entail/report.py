"""The decision report: one decision, readable by the applicant's case officer,
an auditor or a regulator (issue 17 §4, docs/reports.md).

:func:`content` picks what a report shows out of a record — the inputs (masked
values stay HMACs: the record never held clear ones), the ruleset version and
its source hash, the engine version, the answers with their reasons and
proofs, the why-nots asked for, the timestamps and, for an audited decision,
where its row sits in the signed Merkle trail — bounded by settings (a proof
too large is cut with a note). :mod:`entail.report_html` renders that content;
:func:`build` hashes the HTML. Nothing here reads a clock: the same record
gives the same bytes, so the SHA-256 is a stable fingerprint.

:func:`generate` is what the API calls: the audited record when there is one,
else the live record (marked so), and the hash recorded in the audit store's
``decision_reports`` table. Not in the decision's own row: that row is
immutable and covered column by column by the trail's signed roots.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from . import report_html
from .audit.schema import DECISION_REPORTS_TABLE, format_timestamp, parse_timestamp
from .models import DecisionRecord, utcnow
from .services import Services

#: Names the layout of :func:`content` and of the HTML; part of each recorded hash row.
GENERATOR_VERSION = "entail.report.v1"

Source = Literal["audit", "live"]


@dataclass(frozen=True)
class Bounds:
    """How much of a record a report shows (ENTAIL_REPORT_MAX_*)."""

    proof_steps: int = 2_000  # proof and why-not nodes over the whole report
    proof_depth: int = 64  # nesting of one proof
    rows: int = 1_000  # fact rows over all predicates; answers per query


@dataclass(frozen=True)
class Report:
    content: dict[str, Any]
    html: bytes
    sha256: str

    @property
    def source(self) -> Source:
        source: Source = self.content["source"]
        return source


class _Budget:
    """The proof steps a report has left; counts what it had to leave out."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.left = bounds.proof_steps
        self.cut = False

    def omitted(self, node: Any, why: str) -> dict[str, Any]:
        self.cut = True
        return {"kind": "omitted", "steps": _size(node), "why": why}


def _size(node: Any) -> int:
    """Proof steps under ``node`` (iterative: stored proofs can be deeper than the stack)."""
    count, stack = 0, [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += 1
            stack.extend(item.get("body") or [])
            stack.extend(item.get("rules") or [])
            stack.extend(item.get("failures") or [])
            if isinstance(item.get("why_not"), dict):
                stack.append(item["why_not"])
    return count


def _bounded(node: Any, budget: _Budget, depth: int = 0) -> Any:
    """A copy of a proof (or why-not) tree within the budget; cut subtrees become
    one ``{"kind": "omitted"}`` node saying how many steps they held."""
    if not isinstance(node, dict):
        return node
    if budget.left <= 0:
        return budget.omitted(node, "the report's step bound (ENTAIL_REPORT_MAX_PROOF_STEPS)")
    if depth >= budget.bounds.proof_depth:
        return budget.omitted(node, f"deeper than {budget.bounds.proof_depth} levels")
    budget.left -= 1
    out = dict(node)
    for key in ("body", "rules", "failures"):
        if isinstance(node.get(key), list):
            out[key] = [_bounded(child, budget, depth + 1) for child in node[key]]
    if isinstance(node.get("why_not"), dict):
        out["why_not"] = _bounded(node["why_not"], budget, depth + 1)
    return out


def _facts(facts: dict[str, Any] | None, bounds: Bounds) -> tuple[dict[str, Any], int]:
    """The case facts with at most ``bounds.rows`` rows in all; how many were left out."""
    if not facts:
        return {}, 0
    shown: dict[str, Any] = {}
    left, omitted = bounds.rows, 0
    for predicate in sorted(facts):
        rows = facts[predicate] if isinstance(facts[predicate], list) else [facts[predicate]]
        shown[predicate] = rows[: max(left, 0)]
        omitted += len(rows) - len(shown[predicate])
        left -= len(shown[predicate])
    return shown, omitted


def _principal_reasons(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every reason of every answer once (by code and message), highest weight first."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for q in answers:
        for a in q.get("answers") or []:
            for r in a.get("reasons") or []:
                if isinstance(r, dict):
                    seen.setdefault((str(r.get("code", "")), str(r.get("message", ""))), r)
    return sorted(
        seen.values(),
        key=lambda r: (-(r.get("weight") or 0), str(r.get("code", "")), str(r.get("message", ""))),
    )


def content(
    record: DecisionRecord,
    source: Source,
    *,
    inclusion: dict[str, Any] | None = None,
    bounds: Bounds | None = None,
) -> dict[str, Any]:
    """What the report shows, as plain JSON (``?format=json``); deterministic."""
    bounds = bounds or Bounds()
    budget = _Budget(bounds)
    queries: list[dict[str, Any]] = []
    for q in record.answers or []:
        answers = q.get("answers") or []
        entry: dict[str, Any] = {"query": q.get("query", ""), "count": len(answers), "answers": []}
        for a in answers[: bounds.rows]:
            item: dict[str, Any] = {"atom": a.get("atom", "")}
            if a.get("reasons"):
                item["reasons"] = a["reasons"]
            if a.get("proof") is not None:
                item["proof"] = _bounded(a["proof"], budget)
            entry["answers"].append(item)
        if len(answers) > bounds.rows:
            entry["omitted_answers"] = len(answers) - bounds.rows
            budget.cut = True
        # why-not per query, when the decision asked for one (explain_absent)
        if isinstance(q.get("why_not"), dict | list):
            entry["why_not"] = _bounded(q["why_not"], budget)
        queries.append(entry)
    # the why-nots the decision asked for (explain_absent), one document per atom
    why_not = [_bounded(w, budget) for w in record.why_not or []]
    facts, omitted_rows = _facts(record.facts, bounds)
    if omitted_rows:
        budget.cut = True
    decision: dict[str, Any] = {
        "decision_id": record.decision_id,
        "tenant": record.tenant,
        "status": record.status,
        "ruleset": {
            "name": record.ruleset.name,
            "version": record.ruleset.version,
            "hash": record.ruleset.hash,
        },
        "engine_version": record.engine_version,
        "request_hash": record.request_hash,
        "result_hash": record.result_hash,
        "explain": record.explain,
        "cached_from": record.cached_from,
        # one timestamp form whatever the store returned (DuckDB and Redis differ)
        "submitted_at": _ts(record.submitted_at),
        "started_at": _ts(record.started_at),
        "completed_at": _ts(record.completed_at),
        "error": record.error.model_dump() if record.error is not None else None,
    }
    if record.datasets:  # the exact dataset versions the decision read (docs/datasets.md)
        decision["datasets"] = [d.model_dump() for d in record.datasets]
    return {
        "generator_version": GENERATOR_VERSION,
        "source": source,
        "decision": decision,
        "inputs": {
            "facts": facts,
            "masked_predicates": sorted(record.masked_predicates),
            "omitted_rows": omitted_rows,
        },
        "reasons": _principal_reasons(record.answers or []),
        "answers": queries,
        "why_not": why_not,
        "inclusion": _inclusion_summary(inclusion),
        "truncated": budget.cut,
    }


def _ts(value: str | None) -> str | None:
    return format_timestamp(parse_timestamp(value)) if value else None


def _inclusion_summary(proof: dict[str, Any] | None) -> dict[str, Any] | None:
    """Where the audited row sits in the signed trail (entail.audit.roots.inclusion)."""
    if not proof:
        return None
    root = proof.get("root") or {}
    return {
        "day": proof.get("day"),
        "seq": proof.get("seq"),
        "leaf_index": proof.get("leaf_index"),
        "tree_size": proof.get("tree_size"),
        "leaf_hash": proof.get("leaf_hash"),
        "root_hash": root.get("root_hash"),
        "key_id": root.get("key_id"),
        "algorithm": root.get("algorithm"),
    }


def build(
    record: DecisionRecord,
    source: Source,
    *,
    inclusion: dict[str, Any] | None = None,
    bounds: Bounds | None = None,
) -> Report:
    """The report of a record: its content, its HTML and the HTML's SHA-256."""
    doc = content(record, source, inclusion=inclusion, bounds=bounds)
    # "replace": a lone surrogate in a JSON string has no UTF-8 form
    data = report_html.render(doc).encode("utf-8", "replace")
    return Report(doc, data, hashlib.sha256(data).hexdigest())


def hash_row(report: Report, generated_at: str | None = None) -> dict[str, Any]:
    """The ``decision_reports`` row recording that this report was generated."""
    d = report.content["decision"]
    row = {
        "decision_id": d["decision_id"],
        "tenant": d["tenant"],
        "report_sha256": report.sha256,
        "generated_at": generated_at or utcnow(),
        "generator_version": GENERATOR_VERSION,
    }
    assert list(row) == DECISION_REPORTS_TABLE.column_names
    return row


class NoSuchDecision(LookupError):
    """Neither the audit store nor Redis holds this decision for the tenant."""


def bounds_of(services: Services) -> Bounds:
    s = services.settings
    return Bounds(
        proof_steps=s.report_max_proof_steps,
        proof_depth=s.report_max_proof_depth,
        rows=s.report_max_rows,
    )


async def generate(services: Services, tenant: str, decision_id: str) -> tuple[Report, str]:
    """The report of a decision of ``tenant`` and when it was generated; its hash is
    recorded (once per distinct report) in ``decision_reports``.

    The audited row is preferred: it is what the trail signs. A decision not yet
    audited (still running, or its row not yet written) is reported from Redis,
    marked live, and its hash is not recorded (it is not the audited decision)."""
    record = await asyncio.to_thread(services.audit.get_decision, tenant, decision_id)
    source: Source = "audit"
    inclusion = None
    if record is None:
        source = "live"
        record = await services.decisions.get(tenant, decision_id)
        if record is None:
            raise NoSuchDecision(decision_id)
    else:
        inclusion = await asyncio.to_thread(_inclusion, services, tenant, decision_id)
    # a big record takes tens of milliseconds to render: not on the event loop
    report = await asyncio.to_thread(build, record, source, inclusion=inclusion, bounds=bounds_of(services))
    generated_at = utcnow()
    if source == "audit":
        await asyncio.to_thread(services.audit.put_decision_report, hash_row(report, generated_at))
    return report, generated_at


def _inclusion(services: Services, tenant: str, decision_id: str) -> dict[str, Any] | None:
    from .audit.roots import inclusion  # DuckDB or BigQuery trail, whichever the store is

    return inclusion(services.audit, tenant, decision_id)  # type: ignore[arg-type]
