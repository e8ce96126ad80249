"""Who may push jobs to the worker (``ENTAIL_PUSH_AUTH``).

* ``oidc`` (the cloud): Pub/Sub push sends ``Authorization: Bearer <ID token>``
  signed by Google for the subscription's push service account. The token must
  verify against Google's signing certificates (``ENTAIL_PUSH_CERTS_URL``), come
  from issuer ``https://accounts.google.com``, be unexpired, carry the audience
  ``ENTAIL_PUSH_AUDIENCE`` (default: the push URL, Pub/Sub's default audience)
  and the verified email ``ENTAIL_PUSH_SERVICE_ACCOUNT``. Cloud Run checks the
  invoker permission before the request arrives; this check is the worker's own,
  so a misconfigured IAM binding alone does not open it.
* ``secret`` (local): the relay's shared secret header.
* ``none``: nothing checked — for the Pub/Sub emulator, which signs nothing.
  Settings refuse it in production.

A request without credentials, or with a token that does not verify, is 401; a
valid token of another account (or an unverified email) is 403. Certificates are
fetched once and kept for their ``Cache-Control: max-age``; a token signed with
a key not in the cache refetches them (key rotation), at most every
:data:`REFETCH_MIN_S`. Certificates that cannot be fetched make the push 503, so
Pub/Sub delivers it again.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from entail.settings import Settings

PUSH_SECRET_HEADER = "x-entail-push-secret"
GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
CLOCK_SKEW_S = 10
REFETCH_MIN_S = 30.0
DEFAULT_CERTS_TTL_S = 3600.0
MAX_CERTS_TTL_S = 24 * 3600.0
_MAX_AGE = re.compile(r"max-age=(\d+)")


@dataclass(frozen=True)
class Denied:
    """Why a push is refused: the HTTP status (401 or 403) and a one-line reason."""

    status: int
    reason: str


class CertsUnavailable(RuntimeError):
    """Google's signing certificates could not be fetched (transient: the push is retried)."""


class GoogleCerts:
    """The ``{key id: PEM certificate}`` document at ``url``, cached."""

    def __init__(self, url: str, *, timeout_s: float = 5.0, refetch_min_s: float = REFETCH_MIN_S) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._refetch_min_s = refetch_min_s
        self.fetches = 0
        self._certs: dict[str, str] = {}
        self._expires = 0.0
        self._fetched = float("-inf")
        self._lock = asyncio.Lock()

    async def for_key(self, key_id: str | None) -> dict[str, str]:
        """Certificates that include ``key_id`` if Google has it (refetched when
        stale or when the key is unknown)."""
        now = time.monotonic()
        unknown = key_id is not None and key_id not in self._certs
        if now < self._expires and not (unknown and now - self._fetched >= self._refetch_min_s):
            return self._certs
        async with self._lock:
            now = time.monotonic()
            unknown = key_id is not None and key_id not in self._certs
            if now >= self._expires or (unknown and now - self._fetched >= self._refetch_min_s):
                await self._fetch()
        return self._certs

    async def _fetch(self) -> None:
        self.fetches += 1
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                response = await client.get(self.url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CertsUnavailable(f"cannot fetch the push token certificates at {self.url}: {exc}") from exc
        if not isinstance(document, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in document.items()
        ):
            raise CertsUnavailable(f"{self.url} did not answer a {{key id: PEM certificate}} object")
        match = _MAX_AGE.search(response.headers.get("cache-control", ""))
        ttl = min(float(match.group(1)), MAX_CERTS_TTL_S) if match else DEFAULT_CERTS_TTL_S
        self._certs = dict(document)
        self._fetched = time.monotonic()
        self._expires = self._fetched + ttl


class PushAuthenticator:
    """Checks one push request's headers; ``None`` means allowed."""

    def __init__(self, settings: Settings, certs: GoogleCerts | None = None) -> None:
        self.mode = settings.push_auth
        self._secret = settings.push_secret.encode()
        self._audience = settings.push_oidc_audience
        self._email = settings.push_service_account
        self._certs = certs or GoogleCerts(settings.push_certs_url)

    async def check(self, headers: Any) -> Denied | None:
        """``headers``: the request's (case-insensitive) headers."""
        if self.mode == "none":
            return None
        if self.mode == "secret":
            presented = str(headers.get(PUSH_SECRET_HEADER, "")).encode()
            if not hmac.compare_digest(presented, self._secret):
                return Denied(401, f"missing or wrong {PUSH_SECRET_HEADER} header")
            return None
        return await self._check_token(str(headers.get("authorization", "")))

    async def _check_token(self, authorization: str) -> Denied | None:
        from google.auth import exceptions, jwt

        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Denied(401, "missing Authorization: Bearer <OIDC token> header")
        token = token.strip()
        try:
            key_id = jwt.decode_header(token).get("kid")  # type: ignore[no-untyped-call]
        except (exceptions.GoogleAuthError, ValueError) as exc:
            return Denied(401, f"the bearer token is not a JWT: {exc}")
        certs = await self._certs.for_key(key_id if isinstance(key_id, str) else None)
        try:
            claims: dict[str, Any] = jwt.decode(  # type: ignore[no-untyped-call]
                token, certs=certs, audience=self._audience, clock_skew_in_seconds=CLOCK_SKEW_S
            )
        except (exceptions.GoogleAuthError, ValueError) as exc:
            return Denied(401, f"the push token does not verify: {exc}")
        if claims.get("iss") not in GOOGLE_ISSUERS:
            return Denied(401, f"the push token was issued by {claims.get('iss')!r}, not Google")
        if claims.get("email") != self._email:
            return Denied(403, f"the push token is for {claims.get('email')!r}, not the push service account")
        if claims.get("email_verified") is not True:
            return Denied(403, "the push token's email is not verified")
        return None
