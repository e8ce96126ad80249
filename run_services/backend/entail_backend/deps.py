"""Request dependencies: the services, the caller's key, scopes and rate limit."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from entail import logs
from entail.auth import ApiKey
from entail.bootstrap import Services
from entail.models import RulesetVersion
from entail.state.ratelimit import RateDecision, key_bucket
from entail.state.registry import name_ref, parse_version

from .problems import Problem


# async, as every dependency here: FastAPI runs a plain ``def`` dependency in its
# thread pool, two thread hand-offs per request for an attribute read (py-spy)
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request, services: ServicesDep) -> ApiKey:
    """The key the request guard (guard.py) found before the body was read; looked
    up here only when the app runs without the guard."""
    found: ApiKey | None = getattr(request.state, "api_key", None)
    if found is not None:
        return found
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("missing Authorization header: send 'Authorization: Bearer <api key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <api key>'")
    key = services.keys.lookup(token.strip())
    if key is None:
        raise _unauthorized("unknown or revoked API key")
    request.state.api_key = key
    return key


def require(*scopes: str, resolves_ruleset: bool = False) -> Callable[..., Coroutine[Any, Any, ApiKey]]:
    """The caller's key, which must hold one of ``scopes`` (admin holds all); then
    one token from the key's rate-limit bucket.

    ``resolves_ruleset``: the route's JSON body names a ruleset in ``"ruleset"``
    (the decision routes). The version it names by name is read in the same round
    trip as the token (:meth:`~entail.state.ratelimit.RateLimiter.take_resolving`)
    and left for :func:`resolved_ruleset`; the token, its headers and the 429 are
    the same as any route's."""

    async def dependency(
        request: Request, services: ServicesDep, key: Annotated[ApiKey, Depends(authenticate)]
    ) -> ApiKey:
        check_scope(key, scopes)
        ruleset = await _body_ruleset(request) if resolves_ruleset else None
        await take_token(request, services, key, ruleset=ruleset)
        return key

    return dependency


Decide = Annotated[ApiKey, Depends(require("decide"))]
# POST /v1/decisions and /batch: the token and the ruleset version in one round trip
DecideNamingRuleset = Annotated[ApiKey, Depends(require("decide", resolves_ruleset=True))]
Author = Annotated[ApiKey, Depends(require("author"))]
Reader = Annotated[ApiKey, Depends(require("decide", "author", "audit"))]
Auditor = Annotated[ApiKey, Depends(require("audit"))]


def check_scope(key: ApiKey, scopes: tuple[str, ...]) -> None:
    """403 unless ``key`` holds one of ``scopes``."""
    if not any(key.allows(s) for s in scopes):
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            f"this API key lacks the scope {' or '.join(repr(s) for s in scopes)}",
        )


async def take_token(request: Request, services: Services, key: ApiKey, *, ruleset: object = None) -> None:
    """One token from the key's bucket, its ``RateLimit-*`` headers left on
    ``request.state`` for the answer (edge.py), or the 429. ``ruleset``: what a
    decision body's ``"ruleset"`` holds; when it names a version by name, that
    version is read in the same round trip and kept for :func:`resolved_ruleset`
    (anything else, a version hash say, is resolved by the route as before)."""
    settings = services.settings
    bucket = key_bucket(key.tenant, key.id)
    named = name_ref(key.tenant, ruleset) if isinstance(ruleset, str) else None
    decision: RateDecision
    if named is None:
        decision = await services.rate_limiter.take(
            bucket, settings.rate_limit_per_s, settings.rate_limit_burst
        )
    else:
        decision, raw = await services.rate_limiter.take_resolving(
            bucket, settings.rate_limit_per_s, settings.rate_limit_burst, named
        )
        assert isinstance(ruleset, str)
        resolved(request, key.tenant, ruleset, raw)
    apply_token(request, services, key, decision)


def apply_token(request: Request, services: Services, key: ApiKey, decision: RateDecision) -> None:
    """The ``RateLimit-*`` headers of a token taken for this request left for the
    answer, or the 429 of a refused one (the same for every route)."""
    settings = services.settings
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(max(0, round(decision.reset_s))),
    }
    if not decision.allowed:
        retry = max(1, round(decision.retry_after_s + 0.499))
        raise Problem(
            429,
            "rate-limited",
            "Too many requests",
            f"rate limit of {settings.rate_limit_per_s:g} requests/s (burst {settings.rate_limit_burst}) "
            f"exceeded for key {key.id!r}; retry after {retry} s",
            headers={**headers, "Retry-After": str(retry)},
        )
    request.state.rate_headers = headers
    logs.bind(tenant=key.tenant)  # every line of this request says whose it is


async def _body_ruleset(request: Request) -> object:
    """The ``"ruleset"`` of a JSON object body, or None. FastAPI has parsed a JSON
    body before it solves dependencies (cached on the request); a body it could
    not parse never gets here (its 422 comes first)."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        body = await request.json()
    except ValueError:
        return None
    return body.get("ruleset") if isinstance(body, dict) else None


# (tenant, reference by name) -> the stored entry of the version it named when this
# process last read it: what a repeated cache hit is built against
# (routes.decisions.repeat_hit), checked against the store in the hit's one round trip
_RECENT_VERSIONS: dict[tuple[str, str], bytes] = {}
_RECENT_VERSIONS_MAX = 1024
_RECENT_VERSION_MAX_BYTES = 64 * 1024  # a larger entry (many tests) is read each time: at most 64 MiB


def resolved(request: Request, tenant: str, ref: str, raw: bytes | None) -> None:
    """What ``ref`` of ``tenant`` names, read with this request's token: left for
    :func:`resolved_ruleset`, and remembered for the process (:func:`recent_version`)."""
    request.state.resolved_ruleset = (tenant, ref, raw)
    if raw is None or len(raw) > _RECENT_VERSION_MAX_BYTES:
        _RECENT_VERSIONS.pop((tenant, ref), None)
        return
    if len(_RECENT_VERSIONS) >= _RECENT_VERSIONS_MAX:
        _RECENT_VERSIONS.clear()
    _RECENT_VERSIONS[(tenant, ref)] = raw


def recent_version(tenant: str, ref: str) -> bytes | None:
    """The stored entry ``ref`` of ``tenant`` named when this process last read it
    (it may have changed since: a user of it checks, in the store)."""
    return _RECENT_VERSIONS.get((tenant, ref))


def resolved_ruleset(request: Request, tenant: str, ref: str) -> tuple[bool, RulesetVersion | None]:
    """(True, the version or None) when :func:`require` read what ``ref`` of ``tenant``
    names in this request's first round trip; (False, None) when it did not."""
    found: tuple[str, str, bytes | None] | None = getattr(request.state, "resolved_ruleset", None)
    if found is None or found[0] != tenant or found[1] != ref:
        return False, None
    raw = found[2]
    return True, parse_version(raw) if raw is not None else None
