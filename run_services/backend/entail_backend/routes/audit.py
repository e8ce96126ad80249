"""The audit trail: search decisions, read one with its proof, replay one."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from entail import reasoning
from entail.models import DecisionRecord

from ..deps import Auditor, ServicesDep
from ..problems import Problem, not_found
from ..schemas import AuditPage, ChangedDecision, DecisionOut, ImpactOut, ImpactRequest, QueryDiff, ReplayOut
from .decisions import public

router = APIRouter(tags=["audit"])


@router.get("/v1/audit/decisions", response_model=AuditPage)
async def search(
    services: ServicesDep,
    key: Auditor,
    start: Annotated[datetime, Query(description="completed at or after (ISO 8601 with a time zone)")],
    end: Annotated[datetime, Query(description="completed before (ISO 8601 with a time zone)")],
    ruleset: Annotated[str | None, Query(description="ruleset name")] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
    status: Annotated[str | None, Query(pattern="^(succeeded|failed)$")] = None,
    predicate: Annotated[
        str | None, Query(description="answers contain an atom of name/arity, e.g. decision/2")
    ] = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    page_token: str | None = None,
) -> Any:
    """Decisions of the caller's tenant completed in [start, end), newest first."""
    try:
        page = await asyncio.to_thread(
            services.audit.search_decisions,
            key.tenant,
            start,
            end,
            ruleset_name=ruleset,
            ruleset_version=version,
            status=status,
            predicate=predicate,
            page_size=page_size,
            page_token=page_token,
        )
    except ValueError as exc:
        raise Problem(422, "invalid-search", "Invalid search", str(exc)) from None
    return {"items": [public(r) for r in page.items], "next_page_token": page.next_page_token}


async def _record(services: Any, tenant: str, decision_id: str) -> DecisionRecord:
    record: DecisionRecord | None = await asyncio.to_thread(services.audit.get_decision, tenant, decision_id)
    if record is None:
        raise not_found(f"audited decision {decision_id!r}")
    return record


@router.get("/v1/audit/decisions/{decision_id}", response_model=DecisionOut)
async def get_audited(decision_id: str, services: ServicesDep, key: Auditor) -> Any:
    """The full audit record: facts, query, answers with proofs, ruleset version."""
    return public(await _record(services, key.tenant, decision_id))


@router.post("/v1/decisions/{decision_id}/replay", response_model=ReplayOut)
async def replay(decision_id: str, services: ServicesDep, key: Auditor) -> Any:
    """Re-evaluate the stored facts and queries with the stored ruleset version."""
    record = await _record(services, key.tenant, decision_id)
    if record.masked_predicates:
        masked = ", ".join(record.masked_predicates)
        raise Problem(
            409,
            "not-replayable",
            "Not replayable",
            f"not replayable: masked inputs ({masked} are stored as HMACs, not in clear)",
        )
    if record.status != "succeeded":
        raise Problem(
            409,
            "not-replayable",
            "Not replayable",
            f"decision {decision_id!r} {record.status}: nothing to compare",
        )
    ref = record.ruleset
    stored = await asyncio.to_thread(services.audit.get_ruleset, key.tenant, ref.name, ref.version)
    if stored is None:
        raise Problem(
            409,
            "not-replayable",
            "Not replayable",
            f"ruleset {ref.name} version {ref.version} is not in the audit store",
        )
    ruleset = await asyncio.to_thread(reasoning.compile, stored.source, f"{ref.name}.lp")
    result = await asyncio.to_thread(
        ruleset.evaluate, record.facts or {}, record.query, explain=record.explain
    )
    before = {q["query"]: {a["atom"] for a in q["answers"]} for q in record.answers or []}
    diff = []
    for answered in result.answers:
        now = {a.atom for a in answered.answers}
        old = before.get(answered.query, set())
        if now != old:
            diff.append(QueryDiff(query=answered.query, added=sorted(now - old), removed=sorted(old - now)))
    return ReplayOut(
        decision_id=decision_id,
        identical=result.result_hash == record.result_hash and not diff,
        original_result_hash=record.result_hash,
        replay_result_hash=result.result_hash,
        ruleset=ref.model_dump(),
        diff=diff,
    )


def _rules(node: Any, out: set[str]) -> set[str]:
    """The text of every rule used in a proof tree."""
    if isinstance(node, dict):
        if node.get("kind") == "rule":
            out.add(node["rule"]["text"])
        for child in node.get("body", []):
            _rules(child, out)
    return out


def _answer_sets(answers: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {q["query"]: {a["atom"] for a in q["answers"]} for q in answers}


def _proof_rules(answers: list[dict[str, Any]]) -> set[str]:
    rules: set[str] = set()
    for q in answers:
        for a in q["answers"]:
            _rules(a.get("proof"), rules)
    return rules


@router.post("/v1/rulesets/{name}/impact", response_model=ImpactOut)
async def impact(name: str, body: ImpactRequest, services: ServicesDep, key: Auditor) -> Any:
    """Re-run the succeeded decisions of a time window against another version of
    the ruleset: how many would change, and for each change the old and new
    answers and the rules whose use differs between their proofs."""
    candidate = await services.registry.resolve(key.tenant, f"{name}@{body.version}")
    if candidate is None or candidate.name != name:
        raise not_found(f"version {body.version!r} of ruleset {name!r}")
    source = await services.registry.source(candidate.hash)
    if source is None:
        raise not_found(f"the source of {name} version {candidate.version}")
    ruleset = await asyncio.to_thread(reasoning.compile, source, f"{name}.lp")
    records: list[DecisionRecord] = []
    token: str | None = None
    truncated = False
    while True:
        try:
            page = await asyncio.to_thread(
                services.audit.search_decisions,
                key.tenant,
                body.start,
                body.end,
                ruleset_name=name,
                status="succeeded",
                page_size=min(1000, body.limit + 1),
                page_token=token,
            )
        except ValueError as exc:
            raise Problem(422, "invalid-search", "Invalid search", str(exc)) from None
        records += page.items
        token = page.next_page_token
        if len(records) > body.limit:
            records, truncated = records[: body.limit], True
            break
        if token is None:
            break
    changes: list[ChangedDecision] = []
    originals: dict[int, reasoning.Ruleset] = {}
    masked = [r for r in records if r.masked_predicates]
    records = [r for r in records if not r.masked_predicates]
    for record in records:
        old = record.answers or []
        result = await asyncio.to_thread(ruleset.evaluate, record.facts or {}, record.query, explain=True)
        new = [q.to_json() for q in result.answers]
        if _answer_sets(old) == _answer_sets(new):
            continue
        old_rules = _proof_rules(old)
        if not record.explain:  # no stored proofs: explain with the version that decided
            original = await _original(services, key.tenant, record, originals)
            if original is not None:
                replayed = await asyncio.to_thread(
                    original.evaluate, record.facts or {}, record.query, explain=True
                )
                old_rules = _proof_rules([q.to_json() for q in replayed.answers])
        differ = old_rules ^ _proof_rules(new)
        changes.append(
            ChangedDecision(
                decision_id=record.decision_id,
                version=record.ruleset.version,
                old_answers=old,
                new_answers=new,
                rules_differ=sorted(differ),
            )
        )
    return ImpactOut(
        ruleset=name,
        candidate={"version": candidate.version, "hash": candidate.hash},
        decisions=len(records) + len(masked),
        not_replayable=len(masked),
        unchanged=len(records) - len(changes),
        changed=len(changes),
        truncated=truncated,
        changes=changes,
    )


async def _original(
    services: Any, tenant: str, record: DecisionRecord, cache: dict[int, reasoning.Ruleset]
) -> reasoning.Ruleset | None:
    version = record.ruleset.version
    if version not in cache:
        stored = await asyncio.to_thread(services.audit.get_ruleset, tenant, record.ruleset.name, version)
        if stored is None:
            return None
        cache[version] = await asyncio.to_thread(reasoning.compile, stored.source, f"{stored.name}.lp")
    return cache[version]
