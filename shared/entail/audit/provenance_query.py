"""Reverse-provenance queries over the ``decisions`` provenance columns
(provenance.py): which decisions of a time window used rule R of ruleset
version V, used base fact F, or cited reason code C.

Locally a token match is ``contains(column, ' token ')`` on rows already cut
down by tenant and time (the (tenant, completed_at) index); in BigQuery
(bigquery_trail.provenance_rows) it is ``STRPOS(column, ' token ') > 0`` on
rows pruned by the partition (time) and the clustering (tenant, ruleset_name,
ruleset_version, rule_ids). No search index: a substring test cannot use one,
and a ``SEARCH()`` rewrite would tokenise differently from DuckDB (docs/audit.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .duckdb_store import DuckDBAuditStore
from .port import MAX_PAGE_SIZE, decode_page_token, encode_page_token
from .provenance import fact_hash, parse_tokens, token_filter
from .schema import format_timestamp, parse_timestamp

if TYPE_CHECKING:
    from .bigquery_store import BigQueryAuditStore

_HEX16 = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class ProvenanceQuery:
    tenant: str
    start: datetime
    end: datetime
    ruleset_name: str | None = None
    ruleset_version: int | None = None
    rule: int | None = None
    fact: str | None = None  # an atom (normalised, then hashed) or a 16-hex fact hash
    reason_code: str | None = None

    def fact_token(self) -> str | None:
        if self.fact is None:
            return None
        f = self.fact.strip()
        return f if len(f) == 16 and set(f) <= _HEX16 else fact_hash(f)

    def fingerprint(self) -> str:
        import hashlib
        import json

        doc = [
            self.tenant,
            format_timestamp(self.start),
            format_timestamp(self.end),
            self.ruleset_name,
            self.ruleset_version,
            self.rule,
            self.fact_token(),
            self.reason_code,
        ]
        return "p" + hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:15]


def build_query(
    tenant: str,
    start: datetime | str,
    end: datetime | str,
    *,
    ruleset_name: str | None = None,
    ruleset_version: int | None = None,
    rule: int | None = None,
    fact: str | None = None,
    reason_code: str | None = None,
) -> ProvenanceQuery:
    """Validated (ValueError with the reason)."""
    lo, hi = parse_timestamp(start), parse_timestamp(end)
    if lo >= hi:
        raise ValueError(f"empty time range: start {format_timestamp(lo)} must be before end")
    for text in (ruleset_name, fact, reason_code):
        if text is not None:
            text.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate
    if rule is None and fact is None and reason_code is None:
        raise ValueError("name at least one of rule, fact or reason_code")
    if rule is not None:
        if ruleset_name is None or ruleset_version is None:
            raise ValueError("a rule is named by its index in one ruleset version: give ruleset and version")
        if rule < 0:
            raise ValueError(f"rule index {rule} is negative")
    if reason_code is not None:
        token_filter(reason_code)  # raises for a value that is not a constant
    if fact is not None and not fact.strip():
        raise ValueError("fact is empty")
    return ProvenanceQuery(tenant, lo, hi, ruleset_name, ruleset_version, rule, fact, reason_code)


def search(
    store: DuckDBAuditStore | BigQueryAuditStore,
    q: ProvenanceQuery,
    *,
    page_size: int = 100,
    page_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Matching decisions, newest first, keyset-paginated like the audit search."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
    where = ["tenant = ?", "completed_at >= ?", "completed_at < ?"]
    params: list[Any] = [q.tenant, q.start, q.end]
    if q.ruleset_name is not None:
        where.append("ruleset_name = ?")
        params.append(q.ruleset_name)
    if q.ruleset_version is not None:
        where.append("ruleset_version = ?")
        params.append(q.ruleset_version)
    for column, value in (
        ("rule_ids", q.rule),
        ("fact_hashes", q.fact_token()),
        ("reason_codes", q.reason_code),
    ):
        if value is not None:
            where.append(f"contains({column}, ?)")
            params.append(token_filter(value))
    after: tuple[datetime, str] | None = None
    if page_token is not None:
        after = decode_page_token(page_token, q.fingerprint())
    if not isinstance(store, DuckDBAuditStore):
        from .bigquery_trail import provenance_rows

        found = provenance_rows(store, q, after, page_size + 1)
    else:
        if after is not None:
            where.append("(completed_at < ? OR (completed_at = ? AND decision_id < ?))")
            params += [after[0], after[0], after[1]]
        found = store.fetch(
            "SELECT decision_id, completed_at, ruleset_name, ruleset_version, status, result_hash,"
            " rule_ids, reason_codes, engine_version FROM decisions WHERE "
            + " AND ".join(where)
            + " ORDER BY completed_at DESC, decision_id DESC LIMIT ?",
            [*params, page_size + 1],
        )
    more = len(found) > page_size
    found = found[:page_size]
    items = [
        {
            "decision_id": d,
            "completed_at": format_timestamp(c),
            "ruleset": {"name": n, "version": int(v)},
            "status": s,
            "result_hash": h,
            "rule_ids": [int(r) for r in parse_tokens(rules)] if rules is not None else None,
            "reason_codes": parse_tokens(codes),
            "engine_version": e,
        }
        for d, c, n, v, s, h, rules, codes, e in found
    ]
    token = encode_page_token(found[-1][1], found[-1][0], q.fingerprint()) if more else None
    return items, token


def rerun(
    store: DuckDBAuditStore | BigQueryAuditStore, tenant: str, items: list[dict[str, Any]], source: str
) -> dict[str, Any]:
    """Provenance combined with impact: re-run the matched decisions with a fixed
    ruleset source and say which would change and how. Failed and masked
    decisions are skipped (nothing to compare / facts not in clear)."""
    from .. import reasoning

    fixed = reasoning.compile(source, "fixed.lp")  # a ProgramError (diagnostics) is the caller's to show
    changes: list[dict[str, Any]] = []
    skipped = 0
    for item in items:
        record = store.get_decision(tenant, item["decision_id"])
        if record is None or record.status != "succeeded" or record.masked_predicates:
            skipped += 1
            continue
        try:
            result = fixed.evaluate(record.facts or {}, record.query, explain=False)
        except reasoning.EntailError as exc:
            changes.append({"decision_id": record.decision_id, "error": f"{exc.code}: {exc}"})
            continue
        before = {q["query"]: {a["atom"] for a in q["answers"]} for q in record.answers or []}
        diff = []
        for q in result.answers:
            now = {a.atom for a in q.answers}
            old = before.get(q.query, set())
            if now != old:
                diff.append({"query": q.query, "added": sorted(now - old), "removed": sorted(old - now)})
        if diff:
            changes.append({"decision_id": record.decision_id, "diff": diff})
    return {
        "candidate_hash": fixed.hash,
        "rerun": len(items) - skipped,
        "skipped": skipped,
        "changed": len(changes),
        "changes": changes,
    }
