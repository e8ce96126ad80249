"""Rulesets: validate, publish versions (with example cases), list, read, tag.

Validating and publishing (compile, example cases) run in the compute pool under
the service's limits; the event loop only awaits."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from entail import logs, reasoning
from entail.auth import ApiKey
from entail.compute import ComputePool, tasks
from entail.dataset_binding import DatasetBindingError, bind_at_publish, dataset_name
from entail.datasets.ingest import name_problem as dataset_name_problem
from entail.models import RulesetRecord
from entail.reasoning.declarations import arity_schema, request_schema
from entail.services import Services
from entail.state.registry import TAG_RE, RegistryFull, name_problem, source_hash

from .. import compute, idempotent
from ..compute import PoolDep
from ..deps import Author, Reader, ServicesDep
from ..facts_check import ruleset_arities, ruleset_declarations
from ..problems import Problem, not_found
from ..schemas import (
    DatasetBindingOut,
    DatasetBindingsOut,
    DiagnosticOut,
    PublishRequest,
    RulesetList,
    RulesetOut,
    RulesetVersionOut,
    TagMoveOut,
    TagRequest,
    TagsOut,
    TestCaseResultOut,
    TestRunOut,
    ValidateRequest,
    ValidateResponse,
)
from .decisions import _limits

router = APIRouter(prefix="/v1/rulesets", tags=["rulesets"])
# the other side of a binding, read from the registry's index (state/registry.py)
bindings_router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


def _diagnostics(items: list[reasoning.Diagnostic]) -> list[DiagnosticOut]:
    return [DiagnosticOut(**d.to_json(), rendered=d.render()) for d in items]


def _check_name(name: str) -> None:
    """A name no ruleset can have names none: 404, before any key is built from it."""
    if name_problem(name) is not None:
        raise not_found(f"ruleset {name!r}")


async def _summary(services: Any, tenant: str, name: str) -> Any:
    _check_name(name)
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
async def validate(
    body: ValidateRequest, services: ServicesDep, pool: PoolDep, key: Author
) -> ValidateResponse:
    """Diagnostics (errors and warnings) with line and column; nothing is stored."""
    _check_size(services, body.source)
    found = await compute.run(
        pool,
        tasks.validate,
        body.source,
        "<program>",
        budget_ms=compile_budget_ms(services),
        tenant=key.tenant,
    )
    ok = not any(d["severity"] == "error" for d in found)
    digest = source_hash(body.source) if ok else None
    return ValidateResponse(ok=ok, hash=digest, diagnostics=[DiagnosticOut(**d) for d in found])


def compile_budget_ms(services: Any) -> int:
    """The time a compile may take: the service's wall-time cap (the engine has no
    clock inside the compiler; the pool's supervisor enforces it)."""
    return int(services.settings.limit_wall_time_ms)


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
        datasets=v.datasets,
        source=source,
    )


@router.post(
    "",
    response_model=RulesetVersionOut,
    status_code=201,
    responses={
        200: {"description": "the source is the latest version's: that version", "model": RulesetVersionOut},
        201: {"description": "published a new version"},
        **idempotent.RESPONSES,
    },
)
async def publish(
    body: PublishRequest,
    response: Response,
    services: ServicesDep,
    pool: PoolDep,
    key: Author,
    idempotency_key: idempotent.IdempotencyKey = None,
) -> Any:
    """Publish a new version. Identical source to the latest version returns it (200).
    The program must compile and every example case must pass, or nothing is stored."""
    if idempotency_key is None:
        return await _publish(body, response, services, pool, key)

    async def run() -> JSONResponse:
        out = await _publish(body, response, services, pool, key)
        # the answer FastAPI would make of the model, made here to be kept for replay
        return JSONResponse(
            jsonable_encoder(out), status_code=response.status_code or 201, headers=dict(response.headers)
        )

    payload = body.model_dump(mode="json")
    return await idempotent.once(
        services, key.tenant, idempotency_key, "POST /v1/rulesets", lambda: payload, run
    )


async def _publish(
    body: PublishRequest, response: Response, services: Services, pool: ComputePool, key: ApiKey
) -> RulesetVersionOut:
    _check_size(services, body.source)
    tests = [t.model_dump(exclude_defaults=False) for t in body.tests]
    for i, t in enumerate(tests):
        if not t.get("name"):
            t["name"] = f"case {i + 1}"
    # the example cases run under the service's caps, like any decision
    limits = _limits(services, {})
    outcome = await compute.run(
        pool,
        tasks.compile_and_test,
        body.source,
        f"{body.name}.lp",
        tests,
        limits,
        budget_ms=compile_budget_ms(services) + limits["wall_time_ms"] * len(tests),
        tenant=key.tenant,
    )
    if "error" in outcome:
        raise compute.engine_problem(outcome["error"])
    if "invalid_tests" in outcome:
        raise Problem(422, "invalid-tests", "Invalid example cases", outcome["invalid_tests"])
    failures = outcome["failures"]
    if failures:
        raise Problem(
            422,
            "ruleset-tests-failed",
            "Example cases failed",
            f"{len(failures)} of {len(tests)} example case(s) failed; the version was not published",
            failures=failures,
        )
    # every %@dataset of the program bound to a dataset version that exists (pinned
    # selectors resolved now), and no binding the program does not declare
    try:
        bindings = await bind_at_publish(
            services.datasets, key.tenant, outcome.get("datasets", []), body.datasets
        )
    except DatasetBindingError as exc:
        raise Problem(
            exc.status, exc.code, "Dataset binding", f"/datasets/{exc.binding}: {exc}", binding=exc.binding
        ) from None
    try:
        version, created = await services.registry.publish(
            key.tenant,
            body.name,
            body.source,
            body.description,
            tests,
            key.id,
            body.masked_predicates,
            max_versions=services.settings.ruleset_max_versions,
            datasets=bindings,
        )
    except RegistryFull as exc:
        raise _full(exc) from None
    # the audit trail has every version before any decision can use it; idempotent,
    # so publishing the same source again repairs a version whose audit write failed
    await asyncio.to_thread(services.audit.put_ruleset, RulesetRecord.from_version(version, body.source))
    logs.bind(ruleset=version.name, version=version.version)
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/rulesets/{body.name}/versions/{version.version}"
    out = _version_out(version)
    out.created = created
    return out


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


def _full(exc: RegistryFull) -> Problem:
    setting = "ENTAIL_RULESET_MAX_VERSIONS" if exc.what == "versions" else "ENTAIL_RULESET_MAX_TAGS"
    return Problem(409, f"too-many-{exc.what}", f"Too many {exc.what}", f"{exc} ({setting})", limit=exc.limit)


PageSize = Annotated[int, Query(ge=1, le=1000, description="at most this many items")]


@router.get("/{name}", response_model=RulesetOut, responses={404: {"description": "no such ruleset"}})
async def get_ruleset(
    name: str,
    services: ServicesDep,
    key: Reader,
    page_size: PageSize = 100,
    before: Annotated[int | None, Query(ge=2, description="versions numbered below this")] = None,
) -> RulesetOut:
    """A ruleset with its tags and a page of its versions (without sources): the
    newest ``page_size``, oldest first; ``next_before`` asks for the older ones."""
    summary = await _summary(services, key.tenant, name)
    versions, next_before = await services.registry.versions_page(key.tenant, name, before, page_size)
    tags = dict(summary.tags)
    return RulesetOut(
        name=name,
        latest=summary.latest,
        tags=tags,
        updated_at=summary.updated_at,
        versions=[_version_out(v, tags) for v in versions],
        next_before=next_before,
    )


@router.get(
    "/{name}/versions/{version}",
    response_model=RulesetVersionOut,
    responses={404: {"description": "no such ruleset, version or tag"}},
)
async def get_version(name: str, version: str, services: ServicesDep, key: Reader) -> RulesetVersionOut:
    """One version with its source; ``version`` is a number, ``latest`` or a tag."""
    found = await services.registry.resolve(key.tenant, f"{name}@{version}")
    if found is None or found.name != name:
        raise not_found(f"version {version!r} of ruleset {name!r}")
    source = await services.registry.source(found.hash)
    summary = await _summary(services, key.tenant, name)
    return _version_out(found, dict(summary.tags), source=source)


@router.post(
    "/{name}/versions/{version}/tests",
    response_model=TestRunOut,
    responses={404: {"description": "no such ruleset, version or tag"}},
)
async def run_tests(name: str, version: str, services: ServicesDep, pool: PoolDep, key: Reader) -> TestRunOut:
    """Run a version's example cases (the ones publish checked) again with the current
    engine, in the compute pool under the service's caps: each case, whether it
    passes and how its answers differ. ``version`` is a number, ``latest`` or a tag."""
    found = await services.registry.resolve(key.tenant, f"{name}@{version}")
    if found is None or found.name != name:
        raise not_found(f"version {version!r} of ruleset {name!r}")
    source = await services.registry.source(found.hash)
    tests = found.tests
    limits = _limits(services, {})
    outcome = await compute.run(
        pool,
        tasks.compile_and_test,
        source,
        f"{name}.lp",
        tests,
        limits,
        budget_ms=compile_budget_ms(services) + limits["wall_time_ms"] * len(tests),
        tenant=key.tenant,
    )
    if "error" in outcome:
        raise compute.engine_problem(outcome["error"])
    if "invalid_tests" in outcome:  # stored by an older engine that accepted them
        raise Problem(422, "invalid-tests", "Invalid example cases", outcome["invalid_tests"])
    failed = {f["name"]: f["problems"] for f in outcome["failures"]}
    cases = [
        TestCaseResultOut(
            name=t["name"],
            query=list(t.get("query") or []),
            expect=dict(t.get("expect") or {}),
            absent=list(t.get("absent") or []),
            passed=t["name"] not in failed,
            problems=failed.get(t["name"], []),
        )
        for t in tests
    ]
    bad = sum(not c.passed for c in cases)
    return TestRunOut(name=name, version=found.version, passed=len(cases) - bad, failed=bad, cases=cases)


# ruleset hash -> the JSON Schema of its decision request (a hash names one source)
_SCHEMAS: OrderedDict[str, dict[str, Any]] = OrderedDict()
_SCHEMAS_MAX = 256


@router.get(
    "/{name}/schema",
    response_model=dict[str, Any],
    responses={
        200: {"content": {"application/schema+json": {}}},
        404: {"description": "no such ruleset, version or tag"},
    },
)
async def get_schema(
    name: str,
    services: ServicesDep,
    pool: PoolDep,
    key: Reader,
    version: Annotated[str | None, Query(description="a version number or 'latest' (default)")] = None,
    tag: Annotated[str | None, Query(description="a tag, instead of a version")] = None,
) -> Response:
    """The JSON Schema (draft 2020-12) of a decision request for this version: with
    ``%@input`` declarations, ``facts`` holds exactly the declared predicates, each
    an array of typed tuples (``prefixItems``); without, a permissive schema of the
    program's arities (integers or strings; other predicates allowed)."""
    selector = tag if tag is not None else (version or "latest")
    found = await services.registry.resolve(key.tenant, f"{name}@{selector}")
    if found is not None and tag is not None and version is not None:
        # both: the version the tag points at, if it is that one
        numbered = await services.registry.resolve(key.tenant, f"{name}@{version}")
        found = found if numbered is not None and numbered.version == found.version else None
        selector = f"{version} tagged {tag}"
    if found is None or found.name != name:
        raise not_found(f"version {selector!r} of ruleset {name!r}")
    schema = _SCHEMAS.get(found.hash)
    if schema is None:
        declarations = await ruleset_declarations(services, found)
        cacheable = True
        if declarations is not None:
            facts = declarations.facts_schema()
        else:
            arities = await ruleset_arities(services, pool, found, _limits(services, {}))
            cacheable = arities is not None  # the pool was busy: answer, do not keep
            facts = arity_schema(arities or {})
        queries = sorted({q for t in found.tests for q in t.get("query") or []})
        schema = request_schema(facts, f"Decision request for {name}@{found.version}", queries)
        schema["$id"] = f"entail:ruleset:{found.hash}"
        if cacheable:
            _SCHEMAS[found.hash] = schema
            if len(_SCHEMAS) > _SCHEMAS_MAX:
                _SCHEMAS.popitem(last=False)
    return JSONResponse(schema, media_type="application/schema+json")


#: the registry's tag rule in the OpenAPI document ("latest" is reserved: the
#: schema says so with ``not``, the registry answers 422)
TAG_PATTERN = "^" + TAG_RE.pattern.removesuffix("\\Z") + "$"


@router.put(
    "/{name}/tags/{tag}",
    response_model=TagMoveOut,
    responses={404: {"description": "no such ruleset or version"}},
)
async def move_tag(
    name: str,
    tag: Annotated[
        str,
        Path(
            pattern=TAG_PATTERN,
            description="lower-case; not 'latest'",
            json_schema_extra={"not": {"const": "latest"}},
        ),
    ],
    body: TagRequest,
    services: ServicesDep,
    key: Author,
) -> TagMoveOut:
    """Point ``tag`` (e.g. ``prod``) at a version; recorded with who and when."""
    _check_name(name)
    if await services.registry.get(key.tenant, name, body.version) is None:
        raise not_found(f"version {body.version} of ruleset {name!r}")
    try:
        move = await services.registry.set_tag(
            key.tenant, name, tag, body.version, key.id, max_tags=services.settings.ruleset_max_tags
        )
    except ValueError as exc:
        raise Problem(422, "invalid-tag", "Invalid tag", str(exc)) from None
    except RegistryFull as exc:
        raise _full(exc) from None
    return TagMoveOut(**move.model_dump())


@router.get("/{name}/tags", response_model=TagsOut, responses={404: {"description": "no such ruleset"}})
async def get_tags(
    name: str,
    services: ServicesDep,
    key: Reader,
    page_size: PageSize = 100,
    offset: Annotated[int, Query(ge=0, description="skip this many moves")] = 0,
) -> TagsOut:
    """Current tags and a page of their moves, newest first; ``next_offset`` asks
    for the older ones."""
    summary = await _summary(services, key.tenant, name)
    history, next_offset = await services.registry.tag_history_page(key.tenant, name, offset, page_size)
    return TagsOut(
        tags=dict(summary.tags),
        history=[TagMoveOut(**m.model_dump()) for m in history],
        next_offset=next_offset,
    )


@bindings_router.get(
    "/{name}/rulesets",
    response_model=DatasetBindingsOut,
    responses={404: {"description": "no dataset of this name"}},
)
async def dataset_rulesets(
    name: Annotated[str, Path(max_length=64)], services: ServicesDep, key: Reader
) -> DatasetBindingsOut:
    """The ruleset versions whose bindings read dataset ``name`` (pinned to a version
    or floating), newest first: one entry per binding."""
    if dataset_name_problem(name) is not None or not await services.datasets.versions(key.tenant, name):
        raise not_found(f"dataset {name!r}")
    found = await services.registry.bound_to(key.tenant, name)
    return DatasetBindingsOut(
        rulesets=[
            DatasetBindingOut(
                name=v.name,
                version=v.version,
                binding=binding,
                selector=selector,
                published_at=v.published_at,
            )
            for v in found
            for binding, selector in sorted(v.datasets.items())
            if dataset_name(selector) == name
        ]
    )
