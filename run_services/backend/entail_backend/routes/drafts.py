"""Evaluate a draft program over one case without publishing it (the playground).

Nothing is stored, cached or audited: a draft is not a ruleset version, so its
answers are not decisions. The same engine limits as a decision apply, capped by
the service's settings; the evaluation runs in the compute pool, off the event loop.

Every failure is a problem+json: the engine's named errors a 422, anything else
(an engine bug) a 500 ``internal-error``. The answer is encoded by the standard
library (:mod:`entail.record_json`): a proof as deep as ``proof_depth`` allows
nests deeper than pydantic's JSON encoder goes.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from entail import dataset_eval, reasoning
from entail.compute import ComputePool, PoolError, tasks
from entail.dataset_binding import DatasetBindingError, bind_at_publish, resolve_bindings
from entail.reasoning.why_not import parse_ground_atom
from entail.record_json import dumps

from .. import compute
from ..compute import PoolDep
from ..deps import Author, ServicesDep
from ..problems import Problem
from ..schemas import FACTS_SCHEMA, LIMITS_SCHEMA, LOAN_FACTS, LOAN_SOURCE, JsonInt
from .decisions import _check_case, _limits
from .rulesets import _check_size, compile_budget_ms

router = APIRouter(tags=["rulesets"])
log = logging.getLogger("entail.backend.drafts")


class DraftEvaluateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"source": LOAN_SOURCE, "facts": LOAN_FACTS, "query": ["decision(A, D)"], "explain": True}
            ]
        },
    )
    source: str = Field(description="The program text (not published)")
    facts: dict[str, Any] = Field(
        default_factory=dict, description="case facts: predicate -> rows", json_schema_extra=FACTS_SCHEMA
    )
    query: list[str] = Field(default_factory=list, max_length=100)
    explain: StrictBool = False  # strict: true is not 1, "yes" is not true
    locale: str | None = Field(
        default=None,
        max_length=35,
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$",
        description="the language of the answers' reason messages (BCP 47, e.g. de)",
    )
    explain_absent: list[Annotated[str, StringConstraints(max_length=1000)]] = Field(
        default_factory=list,
        max_length=20,
        description="ground atoms to explain why they do not hold (the playground's Why not?): "
        "why_not has one explanation (entail.why_not.v1) per atom",
    )
    limits: dict[str, JsonInt] = Field(
        default_factory=dict, description="lower the engine limits", json_schema_extra=LIMITS_SCHEMA
    )
    datasets: dict[str, Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=dict,
        max_length=64,
        description="each %@dataset name of the program -> the dataset selector to read (name, "
        "name@latest, name@tag, name@N or a version hash), as at publish; an unbound name reads "
        "NAME@latest. The answer's datasets name the versions read",
    )


class DraftDatasetOut(BaseModel):
    """A dataset version the draft read."""

    binding: str
    name: str
    version: int
    hash: str


class DraftEvaluateOut(BaseModel):
    answers: list[dict[str, Any]] = Field(description="per query: its answers (with proofs when explained)")
    result_hash: str
    stats: dict[str, Any]
    why_not: list[dict[str, Any]] | None = Field(
        default=None,
        description="with explain_absent: per atom, why it does not hold (entail.why_not.v1), "
        'or "holds": true',
    )
    datasets: list[DraftDatasetOut] | None = Field(
        default=None, description="with %@dataset declarations: the versions read, by binding"
    )


@router.post("/v1/rulesets/evaluate", response_model=DraftEvaluateOut)
async def evaluate_draft(
    body: DraftEvaluateRequest, services: ServicesDep, pool: PoolDep, key: Author
) -> Any:
    """Compile ``source`` and evaluate it over ``facts`` for ``query``: answers (and
    proofs with ``explain``), the result hash and stats. 422 with diagnostics for a
    program that does not compile; 422 naming the limit for one that is exceeded."""
    _check_size(services, body.source)
    _check_case(body.facts, body.query, "")
    for i, atom in enumerate(body.explain_absent):
        try:
            parse_ground_atom(atom)
        except reasoning.EntailError as exc:
            raise Problem(422, "invalid-why-not", "Invalid why-not", f"/explain_absent/{i}: {exc}") from None
    limits = reasoning.Limits.from_mapping(_limits(services, body.limits))
    try:
        if body.datasets or "%@dataset" in body.source:
            return await _evaluate_with_datasets(body, limits, services, pool, key.tenant)
        return await _evaluate(body, limits, pool, key.tenant, compile_budget_ms(services))
    except Problem:
        raise
    except Exception as exc:  # an engine bug: still a problem+json, never a bare 500
        log.exception("draft evaluation failed")
        raise Problem(
            500, "internal-error", "Internal error", f"the evaluation failed: {type(exc).__name__}"
        ) from None


async def _evaluate(
    body: DraftEvaluateRequest, limits: reasoning.Limits, pool: ComputePool, tenant: str, compile_ms: int
) -> Response:
    # compile and evaluate in the compute pool (a spinning draft stalls no one else);
    # the supervisor stops it at twice compile + evaluation time
    result = await compute.run(
        pool,
        tasks.evaluate,
        body.source,
        "draft.lp",
        body.facts,
        body.query,
        body.explain,
        limits.to_json(),
        False,  # no stage timings
        body.locale,
        body.explain_absent,
        budget_ms=compile_ms + limits.wall_time_ms,
        tenant=tenant,
    )
    if "error" in result:
        raise compute.engine_problem(result["error"])
    return Response(dumps(result), media_type="application/json")


async def _evaluate_with_datasets(
    body: DraftEvaluateRequest,
    limits: reasoning.Limits,
    services: ServicesDep,
    pool: ComputePool,
    tenant: str,
) -> Response:
    """A draft that reads datasets: its ``%@dataset`` names (compiled in the pool) bound
    as a publish binds them, the versions resolved now, and the case evaluated in the
    pool over a process's materialised model of them (entail/dataset_eval.py, as a
    decision's replay is): the first run of a version materialises it, later ones
    reuse it."""
    compile_ms = compile_budget_ms(services)
    compiled = await compute.run(
        pool,
        tasks.compile_and_test,
        body.source,
        "draft.lp",
        [],
        limits.to_json(),
        budget_ms=compile_ms,
        tenant=tenant,
    )
    if "error" in compiled:
        raise compute.engine_problem(compiled["error"])
    declared = compiled.get("datasets", [])
    if not declared and not body.datasets:  # the text was in a comment: no dataset read
        return await _evaluate(body, limits, pool, tenant, compile_ms)
    store = services.datasets
    try:
        bindings = await bind_at_publish(store, tenant, declared, body.datasets)
        refs = await resolve_bindings(store, tenant, bindings)
        case = dataset_eval.DatasetCase(
            reader=services.dataset_reader,
            refs=tuple(refs),
            source=body.source,
            filename="draft.lp",
            facts=body.facts,
            query=body.query,
            explain=body.explain,
            limits=limits.to_json(),
            locale=body.locale,
            explain_absent=body.explain_absent,
            cache_bytes=services.settings.reference_cache_bytes,
        )
        # in the pool: compile, read and materialise (the compile budget), then the case
        result = await dataset_eval.evaluate_recorded(
            pool, store, tenant, case, budget_ms=compile_ms + limits.wall_time_ms
        )
    except PoolError as exc:  # busy, killed, out of memory: as every pool task of a route
        raise compute.pool_problem(exc) from None
    except DatasetBindingError as exc:
        # the draft's selectors are the caller's input: a 422 naming the binding
        raise Problem(
            422, exc.code, "Dataset binding", f"/datasets/{exc.binding}: {exc}", binding=exc.binding
        ) from None
    if "error" in result:
        raise compute.engine_problem(result["error"])
    result["datasets"] = [r.model_dump() for r in refs]
    return Response(dumps(result), media_type="application/json")
