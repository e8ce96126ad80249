"""batch_reason: a Cloud Function (gen2, HTTP) that runs a ruleset over warehouse
tables as BigQuery query jobs (docs/batch.md).

``POST`` a JSON body::

    {"tenant": "acme", "ruleset": "loan@3",
     "inputs": {"applicant": "crm.applicants", "limit": {"table": "crm.limits", "columns": ["id", "cents"]}},
     "destination": "loan_batch", "outputs": ["decision/2"],
     "limits": {"max_bytes": 10000000000, "max_iterations": 1000, "max_rows": 100000000}}

A program with ``%@dataset`` declarations is given ``"datasets": {"orgchart":
"orgchart@3"}``: exact versions, read from the cloud store's tables (docs/batch.md).

The ruleset version is read from the audit store's ``rulesets`` table (every
version's source, kept forever); the inputs are estimated by a dry run and the
run is refused above ``ENTAIL_BATCH_MAX_BYTES`` (or the request's lower
``limits.max_bytes``); the program runs as query jobs; the answer carries the
job statistics and the manifest. Every run that resolved its ruleset writes one
``batch_runs`` audit row, also when it is refused or fails.

Errors are problem+json: 400 (not JSON), 405, 415, 422 (a bad field, a bad
input, an iteration or row limit), 404 (no such ruleset version), 413 (over the
byte cap), 502 (BigQuery refused a job). Nothing connects at import: the audit
store, the BigQuery client and the caps (``ENTAIL_BATCH_*``) come from the
composition root (:func:`entail.bootstrap.open_batch`) at the first request and
are kept; this module only parses HTTP and maps errors around
:func:`entail.batch.run_batch_request`.

Deploy it with IAM invoker authentication (no public access): callers are
trusted principals and ``tenant`` selects whose rulesets are read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from typing import Any

import functions_framework
from flask import Request, Response

from entail import tracing
from entail.batch import BatchRequestError, parse_batch_request, run_batch_request
from entail.bootstrap import BatchResources, open_batch
from entail.problems import MEDIA_TYPE, encode_problem, problem_body, title_of
from entail.settings import Settings

# titles where this function means more than the status's usual one
TITLES = {413: "Scanned bytes over the limit", 502: "BigQuery error"}
MAX_BODY_BYTES = 1_000_000

log = logging.getLogger("entail.batch_reason")
if not log.handlers:  # the framework configures no logging
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
    log.propagate = False

with contextlib.suppress(ValueError):  # settings that do not validate: the first request reports them
    tracing.setup(Settings(), "batch")

_lock = threading.Lock()
_resources: BatchResources | None = None


def resources() -> BatchResources:
    """The instance's audit store, BigQuery client and caps, opened on first use
    (a failed open is not kept: the next request tries again)."""
    global _resources
    with _lock:
        if _resources is None:
            _resources = open_batch(Settings())
        return _resources


def reset() -> None:
    """Close and forget the cached resources (tests; a changed environment)."""
    global _resources
    with _lock:
        if _resources is not None:
            _resources.close()
        _resources = None


def problem(status: int, slug: str, detail: str, **extra: Any) -> Response:
    body = problem_body(status, slug, detail, title=TITLES.get(status, title_of(status)), **extra)
    return Response(encode_problem(body), status=status, mimetype=MEDIA_TYPE)


@functions_framework.http
def batch_reason(request: Request) -> Response:
    if request.method != "POST":
        return problem(405, "method-not-allowed", f"{request.method} is not allowed; POST a JSON body")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return problem(413, "payload-too-large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    if request.mimetype != "application/json":
        return problem(415, "unsupported-media-type", "send the request as application/json")
    try:
        body = json.loads(request.get_data(cache=False, as_text=False) or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        return problem(400, "bad-request", f"the body is not JSON: {exc}")
    carried = {k.lower(): v for k, v in request.headers.items() if k.lower() in tracing.TRACE_HEADERS}
    try:
        with tracing.span("batch.run", parent=tracing.extract(carried)) as span:
            opened = resources()
            batch = parse_batch_request(body, opened.caps)
            result = run_batch_request(batch, opened.store, opened.client, opened.caps)
            tracing.record(span, batch_run_id=result["batch_run_id"], tenant=result["tenant"])
    except BatchRequestError as exc:
        log.info("refused: %s %s", exc.status, exc.detail)
        return problem(exc.status, exc.slug, exc.detail, **exc.extra)
    except Exception:
        log.exception("batch run failed")
        return problem(500, "internal-error", "the batch run failed unexpectedly; see the function's log")
    log.info(
        "batch run %s: %s@%s of %s, %s jobs, %s derived rows",
        result["batch_run_id"],
        result["ruleset"]["name"],
        result["ruleset"]["version"],
        result["tenant"],
        result["jobs"]["jobs"],
        result["jobs"]["derived_rows"],
    )
    return Response(
        json.dumps(result, ensure_ascii=False, default=str), status=200, mimetype="application/json"
    )
