"""Decision records for the state tests."""

from __future__ import annotations

from typing import Any

from entail.models import DecisionRecord, DecisionStatus, RulesetRef, new_decision_id, utcnow


def record(tenant: str = "acme", status: DecisionStatus = "pending", **extra: Any) -> DecisionRecord:
    return DecisionRecord(
        decision_id=new_decision_id(),
        tenant=tenant,
        ruleset=RulesetRef(tenant=tenant, name="r", version=1, hash="a" * 64),
        request_hash="b" * 64,
        status=status,
        submitted_at=utcnow(),
        **extra,
    )
