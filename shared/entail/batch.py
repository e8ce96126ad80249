"""One audited batch run from a JSON request: what ``functions/batch_reason`` serves.

The request names a ruleset version of a tenant (resolved from the audit store's
``rulesets`` table, which keeps every version's source forever), the input
mapping (docs/batch.md), a destination dataset and optional limits no larger
than the configured caps. The run happens in BigQuery (:class:`BigQueryBackend`);
every run that got as far as a resolved ruleset writes exactly one
``batch_runs`` audit row, succeeded or failed, so a batch result is traceable
like an online decision. Errors are :class:`BatchRequestError` with an HTTP
status and a problem type, which the function turns into problem+json.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .models import ENGINE_VERSION, canonical_json, utcnow
from .reasoning.bindings import Signature
from .reasoning.errors import EntailError, LimitExceeded
from .reasoning.ruleset import compile
from .reasoning.sql.bigquery_backend import BigQueryBackend
from .reasoning.sql.datasets import DatasetSource, bigquery_dataset
from .reasoning.sql.errors import BatchInputError, ScannedBytesLimitExceeded
from .reasoning.sql.inputs import parse_inputs
from .reasoning.sql.manifest import Manifest
from .reasoning.sql.run import BatchLimits, parse_signature, run_batch

if TYPE_CHECKING:
    from google.cloud import bigquery

    from .audit.port import AuditStore
    from .models import RulesetRecord
    from .settings import Settings

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}\Z")
_TENANT = re.compile(r"[A-Za-z0-9_.\-]{1,128}\Z")
_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}\Z")
_FIELDS = {"tenant", "ruleset", "inputs", "destination", "outputs", "limits", "datasets"}
_BINDING = re.compile(r"_*[a-z][A-Za-z0-9_']*\Z")
_HASH = re.compile(r"[0-9a-f]{64}\Z")
_LIMITS = {"max_bytes", "max_iterations", "max_rows"}


class BatchRequestError(Exception):
    """A request the function answers with an error: HTTP status, problem slug, detail."""

    def __init__(self, status: int, slug: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail, self.extra = status, slug, detail, extra


@dataclass(frozen=True)
class BatchCaps:
    """The configured maxima (``ENTAIL_BATCH_*``, :class:`entail.settings.Settings`);
    a request may only ask for less."""

    max_bytes: int
    max_iterations: int
    max_rows: int
    work_dataset: str
    location: str
    # where the cloud dataset store keeps each predicate's table (ENTAIL_DATASET_BQ_DATASET)
    datasets_dataset: str = "entail_datasets"

    @classmethod
    def from_settings(cls, settings: Settings) -> BatchCaps:
        return cls(
            max_bytes=settings.batch_max_bytes,
            max_iterations=settings.batch_max_iterations,
            max_rows=settings.batch_max_rows,
            work_dataset=settings.batch_work_dataset,
            location=settings.bigquery_location,
            datasets_dataset=settings.dataset_bq_dataset,
        )


@dataclass(frozen=True)
class BatchRequest:
    tenant: str
    ruleset_name: str
    ruleset_version: int
    inputs: Mapping[str, Any]
    destination: str
    outputs: list[Signature] | None
    limits: BatchLimits
    # %@dataset binding -> the exact version read: (name, version, hash or None)
    datasets: Mapping[str, tuple[str, int, str | None]] = field(default_factory=dict)


def _invalid(detail: str) -> BatchRequestError:
    return BatchRequestError(422, "invalid-request", detail)


def parse_batch_request(body: Any, caps: BatchCaps) -> BatchRequest:
    """Validate a request body; raises :class:`BatchRequestError` (422) naming the field."""
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object with tenant, ruleset, inputs and destination")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _invalid(f"unknown field(s): {', '.join(unknown)} (known: {', '.join(sorted(_FIELDS))})")
    for field_name in ("tenant", "ruleset", "inputs", "destination"):
        if field_name not in body:
            raise _invalid(f"'{field_name}' is required")
    tenant = body["tenant"]
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise _invalid("'tenant' must be a tenant id (letters, digits, '_', '.', '-')")
    name, version = _ruleset_ref(body["ruleset"])
    destination = body["destination"]
    if not isinstance(destination, str) or not _DATASET.match(destination):
        raise _invalid("'destination' must be a BigQuery dataset name (letters, digits, '_')")
    if destination == caps.work_dataset:
        raise _invalid(f"'destination' must not be the working dataset {caps.work_dataset!r}")
    inputs = body["inputs"]
    try:
        parse_inputs(inputs)
    except BatchInputError as exc:
        raise _invalid(f"inputs: {exc}") from None
    outputs: list[Signature] | None = None
    if body.get("outputs") is not None:
        raw = body["outputs"]
        if not isinstance(raw, list) or not raw or not all(isinstance(o, str) for o in raw):
            raise _invalid("'outputs' must be a non-empty list of 'name/arity' strings")
        try:
            outputs = [parse_signature(o) for o in raw]
        except BatchInputError as exc:
            raise _invalid(f"outputs: {exc}") from None
    return BatchRequest(
        tenant,
        name,
        version,
        inputs,
        destination,
        outputs,
        _limits(body.get("limits"), caps),
        _datasets(body.get("datasets")),
    )


def _datasets(raw: Any) -> dict[str, tuple[str, int, str | None]]:
    """``{"orgchart": "orgchart@3"}`` or ``{"orgchart": {"name", "version", "hash"?}}``: as
    for the ruleset, a batch reads exact versions (no tags, no ``latest``)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _invalid("'datasets' must be an object: %@dataset binding -> 'name@version'")
    out: dict[str, tuple[str, int, str | None]] = {}
    for binding, ref in raw.items():
        if not _BINDING.match(binding):
            raise _invalid(f"datasets: {binding!r} is not a %@dataset binding name")
        digest: Any = None
        if isinstance(ref, str):
            name, sep, version_text = ref.partition("@")
            if not sep or not version_text.isdigit():
                raise _invalid(f"datasets.{binding} {ref!r}: give an exact version, 'name@version'")
            version: Any = int(version_text)
        elif isinstance(ref, dict) and {"name", "version"} <= set(ref) <= {"name", "version", "hash"}:
            name, version, digest = ref["name"], ref["version"], ref.get("hash")
        else:
            raise _invalid(f'datasets.{binding}: \'name@version\' or {{"name", "version", "hash"}}')
        if not isinstance(name, str) or not _NAME.match(name):
            raise _invalid(f"datasets.{binding}: {name!r} is not a dataset name")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _invalid(f"datasets.{binding}: version {version!r} must be an integer >= 1")
        if digest is not None and (not isinstance(digest, str) or not _HASH.match(digest)):
            raise _invalid(f"datasets.{binding}: 'hash' must be the version's 64 hex digits")
        out[binding] = (name, version, digest)
    return out


def _ruleset_ref(ref: Any) -> tuple[str, int]:
    """``"loan@3"`` or ``{"name": "loan", "version": 3}``: a batch names an exact version."""
    if isinstance(ref, str):
        name, sep, version_text = ref.partition("@")
        if not sep or not version_text.isdigit():
            raise _invalid(f"'ruleset' {ref!r}: give an exact version, 'name@version' (e.g. 'loan@3')")
        version: Any = int(version_text)
    elif isinstance(ref, dict):
        if set(ref) != {"name", "version"}:
            raise _invalid("'ruleset' as an object needs exactly 'name' and 'version'")
        name, version = ref["name"], ref["version"]
    else:
        raise _invalid("'ruleset' must be 'name@version' or {\"name\", \"version\"}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _invalid(f"'ruleset' name {name!r} is not a ruleset name")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _invalid(f"'ruleset' version {version!r} must be an integer >= 1")
    return name, version


def _limits(raw: Any, caps: BatchCaps) -> BatchLimits:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _invalid("'limits' must be an object")
    unknown = sorted(set(raw) - _LIMITS)
    if unknown:
        raise _invalid(f"limits: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(_LIMITS))})")
    chosen: dict[str, int] = {}
    for key in sorted(_LIMITS):
        cap = int(getattr(caps, key))
        value = raw.get(key, cap)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _invalid(f"limits.{key} must be a non-negative integer")
        if value > cap:
            raise _invalid(f"limits.{key} = {value} is above the configured maximum {cap}")
        chosen[key] = value
    return BatchLimits(
        max_iterations=chosen["max_iterations"],
        max_rows=chosen["max_rows"],
        max_bytes_scanned=chosen["max_bytes"],
    )


def new_batch_run_id(now: datetime | None = None) -> str:
    """``bat_`` + 12 hex digits of the start time in ms + 12 random hex digits (the
    time part gives the BigQuery store a partition bound, as decision ids do)."""
    ms = int((now or datetime.now(UTC)).timestamp() * 1000)
    return f"bat_{ms:012x}{os.urandom(6).hex()}"


def batch_run_row(
    *,
    batch_run_id: str,
    tenant: str,
    ruleset: RulesetRecord,
    dialect: str,
    destination: str | None,
    manifest: Manifest | None,
    error: EntailError | dict[str, Any] | None,
    stats: dict[str, Any],
    started_at: str,
    completed_at: str,
) -> dict[str, Any]:
    """The ``batch_runs`` audit row (wire form of entail.audit.schema) of one run."""
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    if manifest is not None:
        for pred, info in manifest.inputs.items():
            inputs[pred] = {
                "source": info.get("table") or info.get("query"),
                "rows": info.get("rows"),
                "snapshot_time": info.get("snapshot_time"),
            }
        outputs = {o.predicate: {"table": o.table, "rows": o.rows} for o in manifest.outputs}
        # the dataset versions read, as inputs beside the mapped ones (the row keeps its columns)
        for used in manifest.datasets:
            for pred, info in used["predicates"].items():
                inputs[pred.rsplit("/", 1)[0]] = {
                    "source": info["relation"],
                    "rows": info["rows"],
                    "dataset": {k: used[k] for k in ("binding", "name", "version", "hash")},
                }
    if isinstance(error, EntailError):
        error = (
            error.to_json()
            if isinstance(error, LimitExceeded)
            else {"code": error.code, "message": str(error)}
        )
    return {
        "batch_run_id": batch_run_id,
        "tenant": tenant,
        "ruleset_name": ruleset.name,
        "ruleset_version": ruleset.version,
        "ruleset_hash": ruleset.hash,
        "dialect": dialect,
        "status": "succeeded" if error is None else "failed",
        "destination": destination,
        "inputs": canonical_json(inputs),
        "outputs": canonical_json(outputs),
        "stats": canonical_json(stats),
        "error": canonical_json(error) if error is not None else None,
        "engine_version": ENGINE_VERSION,
        "started_at": started_at,
        "completed_at": completed_at,
        "inserted_at": utcnow(),
    }


def run_batch_request(
    request: BatchRequest,
    store: AuditStore,
    client: bigquery.Client,
    caps: BatchCaps,
    *,
    retry: Any = "default",
) -> dict[str, Any]:
    """Resolve the ruleset, run it in BigQuery, write the one audit row; the response body.

    Raises :class:`BatchRequestError` for a missing ruleset (404), a refused run
    (413 over the byte cap, 422 for other limits and bad inputs, 502 when BigQuery
    refuses a job) — the audit row of a refused or failed run is written first.
    """
    from google.api_core.exceptions import BadRequest, GoogleAPICallError, NotFound

    record = store.get_ruleset(request.tenant, request.ruleset_name, request.ruleset_version)
    if record is None:
        raise BatchRequestError(
            404,
            "not-found",
            f"ruleset {request.ruleset_name}@{request.ruleset_version} "
            f"of tenant {request.tenant!r} does not exist",
        )
    started = datetime.now(UTC)
    started_at = utcnow()
    run_id = new_batch_run_id(started)
    backend = BigQueryBackend(
        client,
        work_dataset=caps.work_dataset,
        dest_dataset=request.destination,
        location=caps.location,
        max_bytes_billed=request.limits.max_bytes_scanned,
        retry=retry,
        run_id=run_id[4:].lower(),
        labels={"entail-batch-run": run_id.lower(), "entail-tenant": _label(request.tenant)},
    )
    manifest: Manifest | None = None
    failure: BatchRequestError | None = None
    error: EntailError | dict[str, Any] | None = None
    try:
        # a stored version that this engine no longer accepts fails here, audited like any failure
        ruleset = compile(record.source, f"{record.name}@{record.version}")
        datasets = _dataset_sources(ruleset.datasets, request, client, caps)
        manifest = run_batch(
            ruleset,
            backend,
            request.inputs,
            outputs=request.outputs,
            limits=request.limits,
            datasets=datasets,
        )
    except ScannedBytesLimitExceeded as exc:
        error = exc
        failure = BatchRequestError(413, exc.code, str(exc), limit=exc.limit, value=exc.value)
    except EntailError as exc:
        error = exc
        extra = {"limit": exc.limit, "value": exc.value} if isinstance(exc, LimitExceeded) else {}
        failure = BatchRequestError(422, exc.code, str(exc), **extra)
    except (NotFound, BadRequest) as exc:  # a missing input table, a bad input query
        error = {"code": "invalid-batch-input", "message": _google_message(exc)}
        failure = BatchRequestError(422, "invalid-batch-input", f"BigQuery: {_google_message(exc)}")
    except GoogleAPICallError as exc:
        error = {"code": "bigquery-error", "message": _google_message(exc)}
        failure = BatchRequestError(502, "bigquery-error", f"BigQuery refused a job: {_google_message(exc)}")
    stats = {**backend.job_stats(), "derived_rows": manifest.derived_rows if manifest else None}
    if manifest is not None:
        stats["strata"] = len(manifest.strata)
        stats["elapsed_ms"] = manifest.elapsed_ms
    row = batch_run_row(
        batch_run_id=run_id,
        tenant=request.tenant,
        ruleset=record,
        dialect="bigquery",
        destination=request.destination,
        manifest=manifest,
        error=error,
        stats=stats,
        started_at=started_at,
        completed_at=utcnow(),
    )
    store.put_batch_run(row)
    if failure is not None:
        failure.extra["batch_run_id"] = run_id
        raise failure
    assert manifest is not None
    return {
        "batch_run_id": run_id,
        "status": "succeeded",
        "tenant": request.tenant,
        "ruleset": {"name": record.name, "version": record.version, "hash": record.hash},
        "destination": request.destination,
        "outputs": [{"predicate": o.predicate, "table": o.table, "rows": o.rows} for o in manifest.outputs],
        "datasets": [{k: d[k] for k in ("binding", "name", "version", "hash")} for d in manifest.datasets],
        "jobs": stats,
        "manifest": manifest.to_json(),
    }


class DatasetBindingError(BatchInputError):
    """The request's datasets do not match the program's ``%@dataset`` bindings."""

    code = "dataset-not-declared"


class DatasetNotBound(BatchInputError):
    """A ``%@dataset`` binding of the program the request does not bind."""

    code = "dataset-not-bound"


def _dataset_sources(
    declared: Mapping[str, Any], request: BatchRequest, client: bigquery.Client, caps: BatchCaps
) -> list[DatasetSource]:
    """Each binding of the program read from the cloud store's per-predicate tables."""
    extra = sorted(set(request.datasets) - set(declared))
    if extra:
        raise DatasetBindingError(
            f"datasets: the program declares no dataset {', '.join(map(repr, extra))} "
            f"(its %@dataset names: {', '.join(sorted(declared)) or 'none'})"
        )
    missing = sorted(set(declared) - set(request.datasets))
    if missing:
        raise DatasetNotBound(
            f"datasets: bind {', '.join(map(repr, missing))} to an exact version, e.g. "
            f'"datasets": {{"{missing[0]}": "{missing[0]}@1"}}'
        )
    return [
        bigquery_dataset(
            binding,
            declared[binding],
            project=str(client.project),
            dataset=caps.datasets_dataset,
            tenant=request.tenant,
            name=name,
            version=version,
            hash=digest,
        )
        for binding, (name, version, digest) in sorted(request.datasets.items())
    ]


def _label(value: str) -> str:
    """A BigQuery label value: lowercase letters, digits, '_' and '-', at most 63."""
    return re.sub(r"[^a-z0-9_\-]", "_", value.lower())[:63]


def _google_message(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return str(message)[:1000]
