"""The audit trail an outside auditor can check (docs/audit.md): verify a day's
signed Merkle roots, the inclusion proof of one decision, and reverse
provenance (which decisions used a rule, a base fact or a reason code).

They read whichever audit store the deployment has: the local DuckDB file, or
BigQuery in the cloud (the trail modules carry each adapter's SQL). Signatures
are checked with the keyring of ``open_keyring``: the local public keys and, in
the cloud, the public keys of the Cloud KMS key versions (read once per process;
a key version's public key never changes)."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Annotated, Any, cast

import httpx
from fastapi import APIRouter, Query

from entail.audit import provenance_query as pq
from entail.audit.roots import inclusion, verify_day
from entail.audit.signing import Keyring, kms_verify_key_versions, open_keyring

from ..deps import Auditor, ServicesDep
from ..problems import Problem, not_found
from ..schemas import DateTimeTz, Day
from .decisions import json_response

if TYPE_CHECKING:
    from entail.audit.bigquery_store import BigQueryAuditStore
    from entail.audit.duckdb_store import DuckDBAuditStore
    from entail.settings import Settings

router = APIRouter(tags=["audit"])

_keyrings: dict[tuple[str, tuple[str, ...], str], Keyring] = {}
_keyrings_lock = threading.Lock()


def _trail_store(services: Any) -> DuckDBAuditStore | BigQueryAuditStore:
    # both adapters serve the trail (roots.py / provenance_query.py dispatch to
    # bigquery_trail.py for BigQuery), so the route needs no adapter of its own
    return cast("DuckDBAuditStore | BigQueryAuditStore", services.audit)


def _keyring_now(settings: Settings) -> Keyring:
    key = (
        str(settings.audit_keys_path),
        tuple(kms_verify_key_versions(settings)),
        settings.audit_kms_endpoint,
    )
    with _keyrings_lock:
        found = _keyrings.get(key)
        if found is None:
            found = _keyrings[key] = open_keyring(settings)
        return found


async def _keyring(settings: Settings) -> Keyring:
    """The verification keyring; 503 when Cloud KMS cannot be asked for a public key."""
    try:
        return await asyncio.to_thread(_keyring_now, settings)
    except (httpx.HTTPError, ValueError) as exc:  # unreachable, refused, or a malformed version setting
        raise Problem(
            503,
            "verification-keys-unavailable",
            "Verification keys unavailable",
            f"cannot read the public key of a Cloud KMS key version: {exc}",
        ) from None


@router.get(
    "/v1/audit/verify",
    responses={
        503: {
            "description": "Cloud KMS could not be asked for a key version's public key, or a store is"
            " unavailable; retry."
        }
    },
)
async def verify(
    services: ServicesDep,
    key: Auditor,
    day: Annotated[Day, Query(description="UTC day, YYYY-MM-DD")],
) -> Any:
    """Recompute the caller's tenant's signed roots of ``day`` from the stored rows and
    check their signatures: ``ok``, and the first row that does not match."""
    store = _trail_store(services)
    keyring = await _keyring(services.settings)
    try:
        report = await asyncio.to_thread(verify_day, store, keyring, key.tenant, day)
    except (ValueError, OverflowError) as exc:  # e.g. 9999-12-31 has no next day
        raise Problem(422, "invalid-day", "Invalid day", f"cannot verify {day}: {exc}") from None
    return json_response(report.to_json())


@router.get(
    "/v1/audit/decisions/{decision_id}/inclusion",
    responses={
        404: {"description": "no decision of the caller's tenant with this id is in a signed root (yet)"},
    },
)
async def get_inclusion(decision_id: str, services: ServicesDep, key: Auditor) -> Any:
    """The decision's row encoding, leaf index, RFC 6962 audit path and the signed root:
    what tools/audit_verifier checks with the public key alone (docs/auditors.md)."""
    store = _trail_store(services)
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
    store = _trail_store(services)
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
