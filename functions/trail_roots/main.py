"""trail_roots: a Cloud Function (gen2, HTTP) for the audit trail's scheduled jobs
(docs/audit.md). Cloud Scheduler calls it with an OIDC token (terraform trail.tf):

- ``POST {"job": "roots"}`` daily after midnight UTC: build and sign the roots
  that are due (yesterday's for every tenant, supplementary roots for late
  rows), write them to the ``audit_roots`` table, publish each to the locked
  retention bucket (``gs://<bucket>/roots/<tenant>/<day>[-supplementary-N].json``)
  and copy held rows out of partitions near their expiry;
  ``grace_s`` (default 300) holds back rows younger than that;
- ``POST {"job": "canary"}`` daily: replay a stratified sample of archived
  decisions with today's engine (``sample_size``, default
  ``ENTAIL_CANARY_SAMPLE_SIZE``); a mismatch is a row in ``canary_mismatches``
  and a ``canary_mismatch`` log line (the alert's metric). The answer is 200
  either way: a mismatch is a finding, not a failed run.

Answers: 200 with the job's summary (JSON); problem+json 400 (not JSON), 405,
413, 415, 422 (a bad field); 500 when the job fails, so Cloud Scheduler retries
(every step is idempotent: built roots are not rebuilt, published objects not
rewritten). Nothing connects at import: the audit store, the signer (Cloud KMS)
and the bucket come from the composition root (:func:`entail.bootstrap.open_trail`)
at the first request and are kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from datetime import timedelta
from typing import Any

import functions_framework
from flask import Request, Response

from entail import tracing
from entail.audit.trail_job import TrailResources, canary_job, roots_job
from entail.bootstrap import open_trail
from entail.problems import MEDIA_TYPE, encode_problem, problem_body, title_of
from entail.settings import Settings

MAX_BODY_BYTES = 10_000
MAX_GRACE_S = 86_400.0

log = logging.getLogger("entail.trail_roots")
if not log.handlers:  # the framework configures no logging
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
    log.propagate = False
# the canary logs each mismatch as one JSON line: the log-based metric counts them
_canary_log = logging.getLogger("entail.canary")
if not _canary_log.handlers:
    _canary_log.addHandler(log.handlers[0])
    _canary_log.setLevel(logging.INFO)
    _canary_log.propagate = False

with contextlib.suppress(ValueError):  # settings that do not validate: the first request reports them
    tracing.setup(Settings(), "trail")

_lock = threading.Lock()
_resources: TrailResources | None = None


def resources() -> TrailResources:
    """The instance's audit store, signer and publisher, opened on first use
    (a failed open is not kept: the next request tries again)."""
    global _resources
    with _lock:
        if _resources is None:
            _resources = open_trail(Settings())
        return _resources


def reset() -> None:
    """Close and forget the cached resources (tests; a changed environment)."""
    global _resources
    with _lock:
        if _resources is not None:
            _resources.close()
        _resources = None


def problem(status: int, slug: str, detail: str, **extra: Any) -> Response:
    body = problem_body(status, slug, detail, title=title_of(status), **extra)
    return Response(encode_problem(body), status=status, mimetype=MEDIA_TYPE)


class BadRequest(ValueError):
    """A field of the body that is not what the job takes (422)."""


def parse(body: Any) -> tuple[str, dict[str, Any]]:
    """The job and its arguments; BadRequest naming the field."""
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object, e.g. {"job": "roots"}')
    job = body.get("job")
    if job not in ("roots", "canary"):
        raise BadRequest(f"job must be 'roots' or 'canary', not {job!r}")
    allowed = {"roots": {"job", "grace_s", "tenant"}, "canary": {"job", "sample_size", "seed"}}[job]
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown field(s) for job {job}: {', '.join(unknown)}")
    args: dict[str, Any] = {}
    if job == "roots":
        grace = body.get("grace_s", 300)
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= MAX_GRACE_S:
            raise BadRequest(f"grace_s must be a number of seconds between 0 and {MAX_GRACE_S:.0f}")
        args["grace"] = timedelta(seconds=float(grace))
        tenant = body.get("tenant")
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise BadRequest("tenant must be a non-empty string")
        args["tenant"] = tenant
    else:
        size = body.get("sample_size")
        if size is not None and (
            isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 100_000
        ):
            raise BadRequest("sample_size must be an integer between 1 and 100000")
        seed = body.get("seed")
        if seed is not None and not isinstance(seed, str):
            raise BadRequest("seed must be a string")
        args["sample_size"], args["seed"] = size, seed
    return job, args


@functions_framework.http
def trail_roots(request: Request) -> Response:
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
    try:
        job, args = parse(body)
    except BadRequest as exc:
        return problem(422, "invalid-request", str(exc))
    carried = {k.lower(): v for k, v in request.headers.items() if k.lower() in tracing.TRACE_HEADERS}
    try:
        with tracing.span(f"trail.{job}", parent=tracing.extract(carried)):
            opened = resources()
            if job == "roots":
                result = roots_job(opened, **args)
            else:
                size = args["sample_size"] or Settings().canary_sample_size
                result = canary_job(opened, sample_size=size, seed=args["seed"])
    except Exception:
        log.exception("trail job %s failed", job)
        return problem(500, "internal-error", f"the {job} job failed; see the function's log")
    log.info(json.dumps({"event": f"trail_{job}", **_brief(job, result)}))
    return Response(
        json.dumps(result, ensure_ascii=False, default=str), status=200, mimetype="application/json"
    )


def _brief(job: str, result: dict[str, Any]) -> dict[str, Any]:
    if job == "roots":
        return {
            "built": len(result["built"]),
            "published": len(result.get("published", {}).get("created", [])),
            "held_rows_copied": result.get("held_rows_copied"),
        }
    return {k: result[k] for k in ("run_id", "sampled", "matched", "mismatched")}
