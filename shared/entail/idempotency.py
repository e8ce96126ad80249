"""``Idempotency-Key``: a retried request gets the first one's response.

A client that does not know whether its ``POST`` went through (a timeout, a
dropped connection) sends it again with the same ``Idempotency-Key``; the
backend then answers what it answered the first time (same status, same
decision id, same body) instead of doing the work twice. The rules:

* keys are scoped per tenant: two tenants' equal keys are unrelated;
* a key is 1 to 255 characters of ``A-Z a-z 0-9 . _ : ~ + / = -`` (a UUID, a
  ULID, base64): anything else is refused (400 ``invalid-idempotency-key``);
* the request is identified by a fingerprint: the operation (method and route)
  and the SHA-256 of the canonical JSON of its parsed body (member order and
  defaults spelled out or not make no difference). The same key with another
  fingerprint is refused (409 ``idempotency-key-reused``), on another route too;
* while the first request is still in flight, a second with the same key is
  refused (409 ``idempotency-key-in-flight``, ``Retry-After: 1``): the caller
  retries and then gets the stored response; waiting here would hold a
  connection for as long as the first one runs;
* only a success (2xx) is kept, for ``ENTAIL_IDEMPOTENCY_TTL_S`` (24 h); an
  error frees the key, so a retry runs the request again (a 429 or 503 is
  exactly what a client should retry);
* a request in flight holds its key at most ``ENTAIL_IDEMPOTENCY_IN_FLIGHT_S``:
  a backend that died mid-request does not block the key for a day.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from .models import canonical_json
from .services import Services
from .state.idempotency import IdempotencyStore

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_CHARS = 255
KEY_PATTERN = r"^[A-Za-z0-9._:~+/=-]{1,255}$"
_KEY = re.compile(KEY_PATTERN.removeprefix("^").removesuffix("$"))
#: the response headers replayed with the body (the rest is per response: rate limits, ids)
KEPT_HEADERS = ("content-type", "location")


class InvalidKey(ValueError):
    """The header is not a key we accept."""


class KeyReused(Exception):
    """The key was used for a different request."""


class KeyInFlight(Exception):
    """The first request with this key has not finished yet."""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """This request holds the key until :meth:`Idempotency.finish` or :meth:`abandon`."""

    tenant: str
    key: str
    owner: str


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        shown = key if len(key) <= 40 else key[:40] + "…"
        raise InvalidKey(
            f"the Idempotency-Key {shown!r} ({len(key)} characters) must be 1 to {KEY_MAX_CHARS} "
            "characters of A-Z a-z 0-9 . _ : ~ + / = -"
        )
    return key


def fingerprint(operation: str, payload: Any) -> str:
    """What makes two requests the same: the operation and the canonical body."""
    return hashlib.sha256(canonical_json([operation, payload]).encode()).hexdigest()


class Idempotency:
    def __init__(self, store: IdempotencyStore, ttl_s: float, in_flight_s: float) -> None:
        self.store, self.ttl_ms, self.lease_ms = store, max(1, round(ttl_s * 1000)), round(in_flight_s * 1000)

    @classmethod
    def of(cls, services: Services) -> Idempotency:
        settings = services.settings
        store = IdempotencyStore(services.redis, durability=services.durability)
        return cls(store, settings.idempotency_ttl_s, settings.idempotency_in_flight_s)

    async def begin(self, tenant: str, key: str, request_fingerprint: str) -> Claim | StoredResponse:
        """The claim to run the request, or the response to replay; raises
        :class:`KeyReused` or :class:`KeyInFlight`."""
        owner = secrets.token_hex(16)
        held = await self.store.begin(tenant, check_key(key), request_fingerprint, owner, self.lease_ms)
        if held is None:
            return Claim(tenant, key, owner)
        if held.fingerprint != request_fingerprint:
            raise KeyReused(
                f"the Idempotency-Key {key!r} was used for a different request (another body or "
                "operation); use a new key for a new request"
            )
        if not held.done:
            raise KeyInFlight(f"a request with the Idempotency-Key {key!r} is still in flight; retry shortly")
        return StoredResponse(held.status, held.headers or {}, held.body)

    async def finish(self, claim: Claim, status: int, headers: dict[str, str], body: bytes) -> None:
        """Keep a success for replay; anything else frees the key."""
        if not 200 <= status < 300:
            await self.abandon(claim)
            return
        kept = {name: value for name, value in headers.items() if name.lower() in KEPT_HEADERS}
        await self.store.finish(claim.tenant, claim.key, claim.owner, status, kept, body, self.ttl_ms)

    async def abandon(self, claim: Claim) -> None:
        await self.store.release(claim.tenant, claim.key, claim.owner)
