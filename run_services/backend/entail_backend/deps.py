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
        if not any(key.allows(s) for s in scopes):
            raise Problem(
                403,
                "forbidden",
                "Forbidden",
                f"this API key lacks the scope {' or '.join(repr(s) for s in scopes)}",
            )
        settings = services.settings
        if resolves_ruleset:
            decision = await _take_resolving(request, services, key)
        else:
            decision = await services.rate_limiter.take(
                key_bucket(key.tenant, key.id), settings.rate_limit_per_s, settings.rate_limit_burst
            )
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
        return key

    return dependency


Decide = Annotated[ApiKey, Depends(require("decide"))]
# POST /v1/decisions and /batch: the token and the ruleset version in one round trip
DecideNamingRuleset = Annotated[ApiKey, Depends(require("decide", resolves_ruleset=True))]
Author = Annotated[ApiKey, Depends(require("author"))]
Reader = Annotated[ApiKey, Depends(require("decide", "author", "audit"))]
Auditor = Annotated[ApiKey, Depends(require("audit"))]


async def _take_resolving(request: Request, services: Services, key: ApiKey) -> RateDecision:
    """The key's token, and the version the body's ``"ruleset"`` names when it names
    one by name (kept on ``request.state`` for :func:`resolved_ruleset`). FastAPI has
    parsed a JSON body before it solves dependencies (cached on the request); any
    other body (a version hash, a malformed one) takes the token alone, and the
    route resolves as before."""
    settings = services.settings
    bucket = key_bucket(key.tenant, key.id)
    ref = None
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:  # FastAPI's 422 comes after the token, as on every route
            body = None
        ref = body.get("ruleset") if isinstance(body, dict) else None
    named = name_ref(key.tenant, ref) if isinstance(ref, str) else None
    if named is None:
        return await services.rate_limiter.take(bucket, settings.rate_limit_per_s, settings.rate_limit_burst)
    decision, raw = await services.rate_limiter.take_resolving(
        bucket, settings.rate_limit_per_s, settings.rate_limit_burst, named
    )
    request.state.resolved_ruleset = (key.tenant, ref, raw)
    return decision


def resolved_ruleset(request: Request, tenant: str, ref: str) -> tuple[bool, RulesetVersion | None]:
    """(True, the version or None) when :func:`require` read what ``ref`` of ``tenant``
    names in this request's first round trip; (False, None) when it did not."""
    found: tuple[str, str, bytes | None] | None = getattr(request.state, "resolved_ruleset", None)
    if found is None or found[0] != tenant or found[1] != ref:
        return False, None
    raw = found[2]
    return True, parse_version(raw) if raw is not None else None
