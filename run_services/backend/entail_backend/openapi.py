"""The OpenAPI document tells the truth: every status an operation can answer, with
its problem+json body, the bearer scheme, and links between operations.

FastAPI documents what a route declares: its success model, 422 in its own
``HTTPValidationError`` shape (which is not what ``problems.py`` sends), and the
``responses=`` of the decorator. Everything else the API answers comes from
layers a decorator does not see, so this module adds it from the route itself:

* a route that depends on ``authenticate`` needs a key: the bearer scheme,
  401 (no or bad key), 429 (rate limited) and 503 (the state store behind keys,
  rate limits and every read is unavailable or did not confirm durability);
  one that depends on it through a scope check (``require``) also answers 403;
* a route with a body answers 400 (not JSON), 413 (over the body limit) and 422;
  one with path or query parameters 400 (a NUL in them, refused by guard.py);
* every error answer (>= 400) is ``application/problem+json`` with the
  ``Problem`` schema, whoever documented it.

A route documents only its own errors (404, 409, ...), in its decorator:
``responses={404: {"description": "why"}}``; the body is added here. tests/integration/services/
test_openapi_conformance.py runs Schemathesis against the real service to keep
the document and the answers in step.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from entail.settings import Settings

from .deps import authenticate
from .problems import MEDIA_TYPE
from .schemas import ProblemOut

SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An Entail API key: `Authorization: Bearer <api key>` (see `entail keys`).",
    }
}

_RETRY_AFTER = {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
_RATE_HEADERS = {
    "RateLimit-Limit": {"description": "the key's burst size", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {"description": "requests left in the bucket", "schema": {"type": "integer"}},
    "RateLimit-Reset": {"description": "seconds until the bucket is full", "schema": {"type": "integer"}},
}

_LOCATION = {"description": "where to read what was created or accepted", "schema": {"type": "string"}}

#: on every answer (entail.request_context): the client's X-Request-Id when it was a
#: short token, else a fresh one; also in every problem and every log line of the request
_REQUEST_ID = {
    "description": "this request's id (the client's X-Request-Id when well formed); quote it to an operator",
    "schema": {"type": "string"},
}
_REPLAYED = {
    "description": "true: the stored first response of this Idempotency-Key, not a new one",
    "schema": {"type": "string", "enum": ["true"]},
}

#: what each shared status means, and the headers it carries
SHARED: dict[str, tuple[str, dict[str, Any]]] = {
    "400": ("The body is not JSON (or not UTF-8), or the path or query string holds a NUL.", {}),
    "401": (
        "Missing, malformed, unknown or revoked API key.",
        {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    ),
    "403": ("The API key lacks the scope this operation needs.", {}),
    "413": ("The body is larger than the service's limit (ENTAIL_MAX_BODY_BYTES).", {}),
    "422": ("The request does not validate: `errors` names each field (or a route-specific type).", {}),
    "429": ("Rate limit exceeded for this key.", {"Retry-After": _RETRY_AFTER, **_RATE_HEADERS}),
    "503": (
        "The state store is unavailable, or no replica confirmed the write; retry.",
        {"Retry-After": _RETRY_AFTER},
    ),
}

#: links for Schemathesis' stateful phase and for readers: (method, path of the
#: source) -> name -> (method, path of the target, parameters); on every 2xx
LINKS: dict[tuple[str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("post", "/v1/decisions"): {
        "GetDecision": ("get", "/v1/decisions/{decision_id}", {"decision_id": "$response.body#/decision_id"}),
        "FollowDecision": (
            "get",
            "/v1/decisions/{decision_id}/events",
            {"decision_id": "$response.body#/decision_id"},
        ),
        "GetAuditedDecision": (
            "get",
            "/v1/audit/decisions/{decision_id}",
            {"decision_id": "$response.body#/decision_id"},
        ),
        "ReplayDecision": (
            "post",
            "/v1/decisions/{decision_id}/replay",
            {"decision_id": "$response.body#/decision_id"},
        ),
        "GetInclusionProof": (
            "get",
            "/v1/audit/decisions/{decision_id}/inclusion",
            {"decision_id": "$response.body#/decision_id"},
        ),
    },
    ("post", "/v1/rulesets"): {
        "GetRuleset": ("get", "/v1/rulesets/{name}", {"name": "$response.body#/name"}),
        "GetVersion": (
            "get",
            "/v1/rulesets/{name}/versions/{version}",
            {"name": "$response.body#/name", "version": "$response.body#/version"},
        ),
        "GetTags": ("get", "/v1/rulesets/{name}/tags", {"name": "$response.body#/name"}),
        "MoveTag": ("put", "/v1/rulesets/{name}/tags/{tag}", {"name": "$response.body#/name"}),
        "Decide": ("post", "/v1/decisions", {}),
        "Impact": ("post", "/v1/rulesets/{name}/impact", {"name": "$response.body#/name"}),
    },
    ("post", "/v1/rulesets/{name}/impact"): {
        "GetImpactJob": (
            "get",
            "/v1/rulesets/{name}/impact/{job_id}",
            {"name": "$request.path.name", "job_id": "$response.body#/job_id"},
        ),
    },
    ("put", "/v1/rulesets/{name}/tags/{tag}"): {
        "GetTags": ("get", "/v1/rulesets/{name}/tags", {"name": "$request.path.name"}),
        "GetTaggedVersion": (
            "get",
            "/v1/rulesets/{name}/versions/{version}",
            {"name": "$request.path.name", "version": "$request.path.tag"},
        ),
    },
}
#: request bodies of links (runtime expressions inside are evaluated)
LINK_BODIES: dict[str, Any] = {
    # a case every ruleset answers: no facts, no query (its whole model), quickly
    "Decide": {"ruleset": "$response.body#/name", "facts": {}, "query": [], "wait_ms": 1000},
    "Impact": {"version": "latest"},
}


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the completed document at /openapi.json (and to ``app.openapi()``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(app, FastAPI.openapi(app), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _calls(dependant: Dependant, depth: int = 0) -> Iterator[tuple[Any, int]]:
    for sub in dependant.dependencies:
        yield sub.call, depth
        yield from _calls(sub, depth + 1)


def complete(app: FastAPI, spec: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``spec`` (FastAPI's document of ``app``) with the statuses, bodies, security
    and links described in the module docstring, and the limits ``settings`` put
    on request bodies."""
    spec = copy.deepcopy(spec)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    batch = schemas.get("BatchRequest", {}).get("properties", {}).get("cases")
    if batch is not None:  # more is a 413 batch-too-large
        batch["maxItems"] = settings.batch_max_cases
    problem = ProblemOut.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    for name, schema in problem.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas["Problem"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    spec["components"]["securitySchemes"] = copy.deepcopy(SCHEMES)
    operation_ids: dict[tuple[str, str], str] = {}
    # the routes as mounted (FastAPI wraps included routers; the context has the final path)
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        path = context.path_format or route.path_format
        for method in sorted(route.methods or ()):
            op = spec["paths"].get(path, {}).get(method.lower())
            if op is None:
                continue
            operation_ids[(method.lower(), path)] = op["operationId"]
            _complete_operation(route, op)
    for (method, path), links in LINKS.items():
        op = spec["paths"].get(path, {}).get(method)
        if op is None:
            continue
        documented = {
            name: {"operationId": operation_ids[(t_method, t_path)], "parameters": params}
            | ({"requestBody": LINK_BODIES[name]} if name in LINK_BODIES else {})
            for name, (t_method, t_path, params) in links.items()
            if (t_method, t_path) in operation_ids
        }
        for status, response in op["responses"].items():
            if status.startswith("2") and documented:
                response["links"] = copy.deepcopy(documented)
    return spec


def _complete_operation(route: APIRoute, op: dict[str, Any]) -> None:
    calls = list(_calls(route.dependant))
    authenticated = any(call is authenticate for call, _ in calls)
    scoped = any(call is authenticate and depth > 0 for call, depth in calls)
    responses: dict[str, Any] = op.setdefault("responses", {})
    shared: list[str] = []
    if authenticated:
        op["security"] = [{"bearer": []}]
        shared += ["401", "429", "503"] + (["403"] if scoped else [])
    params = route.dependant.path_params or route.dependant.query_params
    if route.body_field is not None:
        shared += ["400", "413", "422"]
    elif params:  # the request guard refuses a NUL in the path or query string
        shared += ["400"]
    for status in shared:
        description, headers = SHARED[status]
        response = responses.setdefault(status, {"description": description})
        if status == "422" and response.get("description") == "Validation Error":
            response["description"] = description  # FastAPI's default
        if headers:
            response.setdefault("headers", {}).update(copy.deepcopy(headers))
    for status in ("201", "202"):  # where the created resource or the job can be read
        if status in responses:
            responses[status].setdefault("headers", {})["Location"] = copy.deepcopy(_LOCATION)
    if scoped:  # require() takes a token from the key's bucket and says so
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {}).update(copy.deepcopy(_RATE_HEADERS))
    for param in op.get("parameters", []):
        schema = param.get("schema", {})
        options = schema.get("anyOf", [])
        if param["in"] == "header" and {"type": "null"} in options and len(options) == 2:
            # an optional header is absent, never null: its schema is the value's
            (value,) = [o for o in options if o != {"type": "null"}]
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "title", "description")}
            param["schema"] = {**value, **rest}
    replayable = any(p.alias == "Idempotency-Key" for p in route.dependant.header_params)
    for status, response in responses.items():
        response.setdefault("headers", {})["X-Request-Id"] = copy.deepcopy(_REQUEST_ID)
        if replayable and status.startswith("2"):
            response["headers"]["Idempotent-Replayed"] = copy.deepcopy(_REPLAYED)
        if status[0] in "45":
            if response.get("description") == "Validation Error":
                response["description"] = SHARED["422"][0]
            response["content"] = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    op["responses"] = dict(sorted(responses.items()))
