"""Rulesets: validate, publish versions (with example cases), list, read, tag."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response

from entail import reasoning
from entail.audit.schema import RulesetRecord
from entail.reasoning.testing import TestFileError, cases_from_data, run_test_case
from entail.state.registry import source_hash

from ..deps import Author, Reader, ServicesDep
from ..problems import Problem, not_found
from ..schemas import (
    DiagnosticOut,
    PublishRequest,
    RulesetList,
    RulesetOut,
    RulesetVersionOut,
    TagMoveOut,
    TagRequest,
    TagsOut,
    ValidateRequest,
    ValidateResponse,
)

router = APIRouter(prefix="/v1/rulesets", tags=["rulesets"])


def _diagnostics(items: list[reasoning.Diagnostic]) -> list[DiagnosticOut]:
    return [DiagnosticOut(**d.to_json(), rendered=d.render()) for d in items]


async def _summary(services: Any, tenant: str, name: str) -> Any:
    summary = await services.registry.summary(tenant, name)
    if summary is None:
        raise not_found(f"ruleset {name!r}")
    return summary


def _check_size(services: Any, source: str) -> None:
    limit = services.settings.limit_program_bytes
    size = len(source.encode())
    if size > limit:
        raise Problem(
            413,
            "limit-program-size",
            "Program too large",
            f"the program is {size} bytes; the limit is {limit}",
            limit=limit,
            value=size,
        )


@router.post("/validate", response_model=ValidateResponse)
async def validate(body: ValidateRequest, services: ServicesDep, key: Author) -> ValidateResponse:
    """Diagnostics (errors and warnings) with line and column; nothing is stored."""
    _check_size(services, body.source)
    diagnostics = reasoning.check(body.source)
    ok = not any(d.severity == "error" for d in diagnostics)
    digest = source_hash(body.source) if ok else None  # check() compiled it already
    return ValidateResponse(ok=ok, hash=digest, diagnostics=_diagnostics(diagnostics))


def _version_out(
    v: Any, tags: dict[str, int] | None = None, *, source: str | None = None
) -> RulesetVersionOut:
    return RulesetVersionOut(
        name=v.name,
        version=v.version,
        hash=v.hash,
        description=v.description,
        published_at=v.published_at,
        published_by=v.published_by,
        tests=len(v.tests),
        tags=sorted(t for t, n in (tags or {}).items() if n == v.version),
        masked_predicates=v.masked_predicates,
        source=source,
    )


@router.post("", response_model=RulesetVersionOut, status_code=201)
async def publish(
    body: PublishRequest, response: Response, services: ServicesDep, key: Author
) -> RulesetVersionOut:
    """Publish a new version. Identical source to the latest version returns it (200).
    The program must compile and every example case must pass, or nothing is stored."""
    _check_size(services, body.source)
    try:
        ruleset = reasoning.compile(body.source, f"{body.name}.lp")
    except reasoning.ProgramError as exc:
        raise Problem(
            422,
            "invalid-program",
            "Invalid program",
            f"the program has {len(exc.diagnostics)} error(s); first: "
            f"{exc.diagnostics[0].line}:{exc.diagnostics[0].column}: {exc.diagnostics[0].message}",
            diagnostics=[d.model_dump() for d in _diagnostics(exc.diagnostics)],
        ) from None
    tests = [t.model_dump(exclude_defaults=False) for t in body.tests]
    failures = _run_tests(ruleset, tests)
    if failures:
        raise Problem(
            422,
            "ruleset-tests-failed",
            "Example cases failed",
            f"{len(failures)} of {len(tests)} example case(s) failed; the version was not published",
            failures=failures,
        )
    version, created = await services.registry.publish(
        key.tenant, body.name, body.source, body.description, tests, key.id, body.masked_predicates
    )
    # the audit trail has every version before any decision can use it; idempotent,
    # so publishing the same source again repairs a version whose audit write failed
    await asyncio.to_thread(services.audit.put_ruleset, RulesetRecord.from_version(version, body.source))
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/rulesets/{body.name}/versions/{version.version}"
    out = _version_out(version)
    out.created = created
    return out


def _run_tests(ruleset: reasoning.Ruleset, tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for i, t in enumerate(tests):
        if not t.get("name"):
            t["name"] = f"case {i + 1}"
    try:
        cases = cases_from_data({"cases": tests}, "tests")
    except (TestFileError, reasoning.EntailError) as exc:
        raise Problem(422, "invalid-tests", "Invalid example cases", str(exc)) from None
    failures = []
    for case in cases:
        outcome = run_test_case(ruleset, case)
        if not outcome.passed:
            failures.append({"name": case.name, "problems": outcome.problems})
    return failures


@router.get("", response_model=RulesetList)
async def list_rulesets(services: ServicesDep, key: Reader) -> RulesetList:
    """Every ruleset of the caller's tenant."""
    items = await services.registry.list(key.tenant)
    return RulesetList(
        rulesets=[
            RulesetOut(name=s.name, latest=s.latest, tags=dict(s.tags), updated_at=s.updated_at)
            for s in items
        ]
    )


@router.get("/{name}", response_model=RulesetOut)
async def get_ruleset(name: str, services: ServicesDep, key: Reader) -> RulesetOut:
    """A ruleset with all its versions (without sources) and its tags."""
    versions = await services.registry.versions(key.tenant, name)
    if not versions:
        raise not_found(f"ruleset {name!r}")
    summary = await _summary(services, key.tenant, name)
    tags = dict(summary.tags)
    return RulesetOut(
        name=name,
        latest=summary.latest,
        tags=tags,
        updated_at=summary.updated_at,
        versions=[_version_out(v, tags) for v in versions],
    )


@router.get("/{name}/versions/{version}", response_model=RulesetVersionOut)
async def get_version(name: str, version: str, services: ServicesDep, key: Reader) -> RulesetVersionOut:
    """One version with its source; ``version`` is a number, ``latest`` or a tag."""
    found = await services.registry.resolve(key.tenant, f"{name}@{version}")
    if found is None or found.name != name:
        raise not_found(f"version {version!r} of ruleset {name!r}")
    source = await services.registry.source(found.hash)
    summary = await _summary(services, key.tenant, name)
    return _version_out(found, dict(summary.tags), source=source)


@router.put("/{name}/tags/{tag}", response_model=TagMoveOut)
async def move_tag(name: str, tag: str, body: TagRequest, services: ServicesDep, key: Author) -> TagMoveOut:
    """Point ``tag`` (e.g. ``prod``) at a version; recorded with who and when."""
    if await services.registry.get(key.tenant, name, body.version) is None:
        raise not_found(f"version {body.version} of ruleset {name!r}")
    try:
        move = await services.registry.set_tag(key.tenant, name, tag, body.version, key.id)
    except ValueError as exc:
        raise Problem(422, "invalid-tag", "Invalid tag", str(exc)) from None
    return TagMoveOut(**move.model_dump())


@router.get("/{name}/tags", response_model=TagsOut)
async def get_tags(name: str, services: ServicesDep, key: Reader) -> TagsOut:
    """Current tags and every move, newest first."""
    if not await services.registry.versions(key.tenant, name):
        raise not_found(f"ruleset {name!r}")
    summary = await _summary(services, key.tenant, name)
    history = await services.registry.tag_history(key.tenant, name)
    return TagsOut(tags=dict(summary.tags), history=[TagMoveOut(**m.model_dump()) for m in history])
