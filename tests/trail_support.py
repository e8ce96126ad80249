"""Shared by the audit-trail tests (tests/unit/audit/test_trail_*.py,
tests/integration/trail): real decisions of the loan example, computed by the
engine, in the shape the worker records them."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from entail import reasoning
from entail.audit import DuckDBAuditStore
from entail.audit.schema import format_timestamp
from entail.models import DecisionRecord, RulesetRecord, RulesetRef

LOAN = Path(__file__).resolve().parents[1] / "shared" / "entail" / "examples" / "loan"
# without its reason templates: these tests cover the reason_codes of a ruleset
# without them (the answers' constants); tests/unit/audit/test_reason_codes.py
# covers the templated one
SOURCE = "".join(
    line for line in (LOAN / "program.lp").read_text().splitlines(keepends=True) if not line.startswith("%@")
)
SOURCE_HASH = hashlib.sha256(SOURCE.encode()).hexdigest()
QUERIES = ["decision(A, D)", "reason(A, R)"]
ANN = json.loads((LOAN / "ann.json").read_text())

_COMPILED = reasoning.compile(SOURCE, "loan.lp")


def case(i: int) -> dict[str, Any]:
    """Applicant i: every third has a high debt-to-income ratio (reason high_dti)."""
    facts = copy.deepcopy(ANN)
    name = f"app{i}"
    for rows in facts.values():
        for row in rows:
            row[0] = name
    if i % 3 == 0:
        facts["debt"] = [[name, 4_000_000, "card"]]
    return facts


def ruleset_record(tenant: str = "acme", version: int = 1, source: str = SOURCE) -> RulesetRecord:
    return RulesetRecord(
        tenant=tenant,
        name="loan",
        version=version,
        hash=hashlib.sha256(source.encode()).hexdigest(),
        published_at="2026-01-01T00:00:00.000Z",
        published_by="test",
        source=source,
    )


def decision(
    i: int, completed: datetime, *, tenant: str = "acme", explain: bool = True, version: int = 1
) -> DecisionRecord:
    facts = case(i)
    result = _COMPILED.evaluate(facts, QUERIES, explain=explain)
    return DecisionRecord(
        decision_id=f"dec_{tenant}_{i:07d}",
        tenant=tenant,
        ruleset=RulesetRef(tenant=tenant, name="loan", version=version, hash=SOURCE_HASH),
        request_hash=hashlib.sha256(f"{tenant}{i}".encode()).hexdigest(),
        status="succeeded",
        facts=facts,
        query=QUERIES,
        explain=explain,
        answers=[q.to_json() for q in result.answers],
        result_hash=result.result_hash,
        stats=dict(result.stats),
        engine_version=reasoning.ENGINE_VERSION,
        worker="w1",
        submitted_at=format_timestamp(completed - timedelta(milliseconds=5)),
        started_at=format_timestamp(completed - timedelta(milliseconds=3)),
        completed_at=format_timestamp(completed),
    )


DAY = "2026-11-20"
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def filled_store(n: int = 12, *, tenant: str = "acme", path: str | Path = ":memory:") -> DuckDBAuditStore:
    store = DuckDBAuditStore(path)
    store.put_ruleset(ruleset_record(tenant))
    result = store.insert_decisions(
        [decision(i, NOON + timedelta(minutes=i), tenant=tenant, explain=i % 4 != 1) for i in range(n)]
    )
    assert result.inserted == n, result
    return store


def later() -> datetime:
    """The build time of the tests' roots: now, used with no grace (``GRACE``)."""
    return datetime.now(UTC)


GRACE = timedelta(0)
