"""Problem+json answers as typed exceptions.

Every error the API sends is an RFC 9457 problem (``application/problem+json``):
``type``, ``title``, ``status``, ``detail``, ``instance`` and, depending on the
type, more members (``errors`` of an invalid request, ``diagnostics`` with line
and column of an invalid program, ``path`` into invalid facts, ...). Each status
the API uses has its class; the extra members are kept in ``extra``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx

__all__ = [
    "BadRequest",
    "Conflict",
    "DecisionTimeout",
    "EntailError",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "Unprocessable",
    "error_from_response",
]

_STANDARD = ("type", "title", "status", "detail", "instance")


class EntailError(Exception):
    """An error answer of the API (or, for the base class alone, of the client)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str = "about:blank",
        instance: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.instance = instance
        self.extra: dict[str, Any] = extra or {}
        self.headers: dict[str, str] = headers or {}

    @property
    def slug(self) -> str:
        """The last segment of ``type``, e.g. ``invalid-program``."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]

    def __getattr__(self, name: str) -> Any:
        # problem members beyond the standard five (errors, diagnostics, path, limit, ...)
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(name)


class BadRequest(EntailError):
    """400: the request is not readable (e.g. not JSON, not UTF-8)."""


class Unauthorized(EntailError):
    """401: no API key, or one the service does not know."""


class Forbidden(EntailError):
    """403: the key lacks the scope the operation needs."""


class NotFound(EntailError):
    """404: no such ruleset, version, tag, decision or job in the key's tenant."""


class Conflict(EntailError):
    """409: e.g. not replayable, too many versions of a ruleset."""


class PayloadTooLarge(EntailError):
    """413: the body, the source or the batch is over its limit."""


class Unprocessable(EntailError):
    """422: well-formed but invalid (``errors``, ``diagnostics`` with line and column, ``path``)."""


class RateLimited(EntailError):
    """429: over the key's rate limit or the tenant's quota, after the client's retries."""

    @property
    def retry_after(self) -> float | None:
        """Seconds the service asked to wait (``Retry-After``), if it said."""
        return parse_retry_after(self.headers.get("retry-after"))


class ServiceUnavailable(EntailError):
    """503: a dependency is down or the service is saturated, after the client's retries."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class ServerError(EntailError):
    """Any other 5xx."""


class DecisionTimeout(EntailError, TimeoutError):
    """The decision (or job) was not final within the call's timeout; it goes on in the
    service: read it later with ``decision(decision_id)``."""

    def __init__(self, decision_id: str, timeout: float) -> None:
        super().__init__(
            0,
            "Timed out",
            f"{decision_id} not final within {timeout:g} s",
            type="about:timeout",
        )
        self.decision_id = decision_id
        self.timeout = timeout


_BY_STATUS: dict[int, type[EntailError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: Unprocessable,
    429: RateLimited,
    503: ServiceUnavailable,
}


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds, or an HTTP date relative to now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from_response(response: httpx.Response) -> EntailError:
    """The exception for an error answer: problem+json when it is one, else the text."""
    body: Any = None
    with contextlib.suppress(ValueError):
        body = json.loads(response.content)
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else EntailError)
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = response.text[:500] or response.reason_phrase
    return cls(
        status,
        str(body.get("title") or response.reason_phrase or "Error"),
        detail,
        type=str(body.get("type") or "about:blank"),
        instance=body.get("instance") if isinstance(body.get("instance"), str) else None,
        extra={k: v for k, v in body.items() if k not in _STANDARD},
        headers={k.lower(): v for k, v in response.headers.items()},
    )
