"""``Idempotency-Key`` on the routes that create (entail.idempotency has the rules):
the header parameter they declare, and :func:`once`, which runs a route's work
at most once per key and replays its first response."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header
from starlette.responses import Response

from entail import logs
from entail.bootstrap import Services
from entail.idempotency import (
    KEY_MAX_CHARS,
    KEY_PATTERN,
    REPLAYED_HEADER,
    Claim,
    Idempotency,
    InvalidKey,
    KeyInFlight,
    KeyReused,
    StoredResponse,
    fingerprint,
)

from .problems import Problem

log = logging.getLogger("entail.backend.idempotency")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            "Retry safely: a request repeated with the same key and body (within "
            "ENTAIL_IDEMPOTENCY_TTL_S, 24 h) gets the first response again, with "
            "`Idempotent-Replayed: true`, instead of being run twice; the same key with "
            "another body is a 409 `idempotency-key-reused`, and while the first is still "
            "running a 409 `idempotency-key-in-flight`. Keys are per tenant; only successes are kept."
        ),
        json_schema_extra={"maxLength": KEY_MAX_CHARS, "pattern": KEY_PATTERN},
    ),
]

#: the 409s of a key, for the operations' documented responses
RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "the Idempotency-Key was used for another request, or its first request is in flight"
    }
}


async def once(
    services: Services,
    tenant: str,
    key: str | None,
    operation: str,
    payload: Callable[[], Any],
    run: Callable[[], Awaitable[Response]],
) -> Response:
    """``run()``'s response; with a key, the stored one when this request was made before.

    ``payload()`` is the request's canonical body, built only when a key is sent
    (dumping a body model costs every request otherwise)."""
    if key is None:
        return await run()
    idempotency = Idempotency.of(services)
    try:
        outcome = await idempotency.begin(tenant, key, fingerprint(operation, payload()))
    except InvalidKey as exc:
        raise Problem(400, "invalid-idempotency-key", "Invalid Idempotency-Key", str(exc)) from None
    except KeyReused as exc:
        raise Problem(409, "idempotency-key-reused", "Idempotency-Key reused", str(exc)) from None
    except KeyInFlight as exc:
        raise Problem(
            409, "idempotency-key-in-flight", "Request in flight", str(exc), headers={"Retry-After": "1"}
        ) from None
    if isinstance(outcome, StoredResponse):
        logs.bind(idempotent_replay="true")
        return Response(
            outcome.body, status_code=outcome.status, headers={**outcome.headers, REPLAYED_HEADER: "true"}
        )
    return await _run_holding(idempotency, outcome, run)


async def _run_holding(
    idempotency: Idempotency, claim: Claim, run: Callable[[], Awaitable[Response]]
) -> Response:
    try:
        response = await run()
    except BaseException:
        # the request failed (a problem, a cancelled client): a retry runs it again.
        # Shielded: a cancelled request still frees its key
        await asyncio.shield(idempotency.abandon(claim))
        raise
    try:
        await idempotency.finish(claim, response.status_code, dict(response.headers), bytes(response.body))
    except Exception as exc:
        # the work is done: answer it. The key stays taken until its in-flight lease
        # ends (a retry meanwhile is a 409), or holds the response if the write landed
        log.warning("the response of Idempotency-Key %r was not stored: %s", claim.key, exc)
    return response
