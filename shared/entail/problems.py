"""RFC 9457 problem+json: the one shape of every error Entail answers over HTTP.

The backend (``entail_backend.problems`` builds its exceptions and handlers on
this), the reasoning worker (its push replies) and the ``batch_reason`` function
all write their errors with :func:`problem_body` and :func:`encode_problem`, so
a client reads one format whichever tier refused it.
"""

from __future__ import annotations

import json
from typing import Any

from . import logs

PROBLEM_TYPE_BASE = "https://entail.dev/problems/"
"""A problem's ``type`` is this base plus a stable slug (``limit-wall-time``, ...)."""

MEDIA_TYPE = "application/problem+json"

TITLES: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-request", "Invalid request"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal error"),
    502: ("upstream-error", "Upstream error"),
    503: ("unavailable", "Service unavailable"),
}
"""The default slug and title of each status, for errors that name neither."""


def title_of(status: int) -> str:
    return TITLES.get(status, ("error", "Error"))[1]


def problem_body(
    status: int,
    slug: str,
    detail: str,
    *,
    title: str | None = None,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON object of one problem; ``extra`` members follow the standard ones."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title if title is not None else title_of(status),
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    request_id = logs.request_id()
    if request_id is not None:  # the X-Request-Id of the answer: what to quote to an operator
        body["request_id"] = request_id
    body.update(extra)
    return body


def encode_problem(body: dict[str, Any]) -> bytes:
    """UTF-8 JSON that survives the text it quotes: a problem may echo a client's
    string holding a lone surrogate, which UTF-8 cannot encode; then every
    non-ASCII character is written as its escape (the same JSON, still valid)."""
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        return json.dumps(body, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()
