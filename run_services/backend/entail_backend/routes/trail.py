"""The audit trail an outside auditor can check (docs/audit.md): verify a day's
signed Merkle roots, the inclusion proof of one decision, and reverse
provenance (which decisions used a rule, a base fact or a reason code).

They read the local audit store (DuckDB). On the BigQuery store they answer
409 ``trail-unavailable``: roots and provenance queries there run in the
scheduled trail function and BigQuery itself (docs/audit.md)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from entail.audit import provenance_query as pq
from entail.audit.duckdb_store import DuckDBAuditStore
from entail.audit.roots import inclusion, verify_day
from entail.audit.signing import open_keyring

from ..deps import Auditor, ServicesDep
from ..problems import Problem, not_found
from ..schemas import DateTimeTz, Day
from .decisions import json_response

router = APIRouter(tags=["audit"])


def _local(services: Any) -> DuckDBAuditStore:
    store = services.audit
    if not isinstance(store, DuckDBAuditStore):
        raise Problem(
            409,
            "trail-unavailable",
            "Trail not served here",
            "this deployment keeps its audit trail in BigQuery: verify roots with the exported trail "
            "and tools/audit_verifier, and query provenance in BigQuery (docs/audit.md)",
        )
    return store


@router.get(
    "/v1/audit/verify",
    responses={409: {"description": "the audit store is BigQuery"}},
)
async def verify(
    services: ServicesDep,
    key: Auditor,
    day: Annotated[Day, Query(description="UTC day, YYYY-MM-DD")],
) -> Any:
    """Recompute the caller's tenant's signed roots of ``day`` from the stored rows and
    check their signatures: ``ok``, and the first row that does not match."""
    store = _local(services)
    keyring = open_keyring(services.settings)
    try:
        report = await asyncio.to_thread(verify_day, store, keyring, key.tenant, day)
    except (ValueError, OverflowError) as exc:  # e.g. 9999-12-31 has no next day
        raise Problem(422, "invalid-day", "Invalid day", f"cannot verify {day}: {exc}") from None
    return json_response(report.to_json())


@router.get(
    "/v1/audit/decisions/{decision_id}/inclusion",
    responses={
        404: {"description": "no decision of the caller's tenant with this id is in a signed root (yet)"},
        409: {"description": "the audit store is BigQuery"},
    },
)
async def get_inclusion(decision_id: str, services: ServicesDep, key: Auditor) -> Any:
    """The decision's row encoding, leaf index, RFC 6962 audit path and the signed root:
    what tools/audit_verifier checks with the public key alone (docs/auditors.md)."""
    store = _local(services)
    try:
        decision_id.encode("utf-8")
    except UnicodeEncodeError:  # an id no decision can have (a lone surrogate)
        raise not_found(f"a signed root holding decision {decision_id!r}") from None
    proof = await asyncio.to_thread(inclusion, store, key.tenant, decision_id)
    if proof is None:
        raise not_found(f"a signed root holding decision {decision_id!r}")
    return json_response(proof)


@router.get(
    "/v1/audit/provenance",
    responses={
        409: {"description": "the audit store is BigQuery"},
        422: {"description": "no criterion, an empty window, a rule without its version, a bad token"},
    },
)
async def provenance(
    services: ServicesDep,
    key: Auditor,
    start: Annotated[DateTimeTz, Query(description="completed at or after (ISO 8601 with a time zone)")],
    end: Annotated[DateTimeTz, Query(description="completed before (ISO 8601 with a time zone)")],
    ruleset: Annotated[str | None, Query(max_length=200)] = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    rule: Annotated[
        int | None, Query(ge=0, le=2**31 - 1, description="rule index in that version (proof rule.index)")
    ] = None,
    fact: Annotated[
        str | None,
        Query(
            min_length=1, max_length=4096, description="a base fact as clingo prints it, or its 16-hex hash"
        ),
    ] = None,
    reason_code: Annotated[str | None, Query(pattern=r"^[a-z_][A-Za-z0-9_']*$", max_length=200)] = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: Annotated[str | None, Query(max_length=2000)] = None,
) -> Any:
    """Decisions of the caller's tenant completed in [start, end) that used rule
    ``rule`` of ``ruleset`` version ``version``, used base fact ``fact``, or cited
    ``reason_code`` (all given criteria hold), newest first."""
    store = _local(services)
    try:
        q = pq.build_query(
            key.tenant,
            start,
            end,
            ruleset_name=ruleset,
            ruleset_version=version,
            rule=rule,
            fact=fact,
            reason_code=reason_code,
        )
        items, token = await asyncio.to_thread(
            pq.search, store, q, page_size=page_size, page_token=page_token
        )
    except (ValueError, OverflowError) as exc:
        raise Problem(422, "invalid-provenance-query", "Invalid provenance query", str(exc)) from None
    return json_response({"items": items, "next_page_token": token})
