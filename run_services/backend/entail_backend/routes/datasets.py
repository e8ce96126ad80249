"""Datasets: streamed uploads of reference data, versions, paged facts, diff, tags.

docs/datasets.md ("The API") is the contract. Scope ``author`` writes, ``decide``
(or any reader) reads; a tenant sees only its own datasets. Uploads are never
whole in memory: the request guard lets ``POST /v1/datasets/{name}`` through
unread (guard.py, ``STREAMED_UPLOAD``), and the store spools the body to disk.
``GET /v1/datasets/{name}/rulesets`` lives with the ruleset routes (bindings).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from entail.datasets import multipart
from entail.datasets import progress as upload_progress
from entail.datasets.ingest import name_problem, predicate_problem
from entail.datasets.local_store import tag_problem
from entail.datasets.port import DatasetError, DatasetVersion, Format, Progress, UploadPart
from entail.services import Services

from ..deps import Author, Reader, ServicesDep
from ..problems import Problem, not_found

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

UPLOAD_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_CHUNK = 1 << 16
_FORMATS: dict[str, Format] = {
    "application/x-ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/json-lines": "ndjson",
    "application/ndjson": "ndjson",
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
_SUFFIXES: dict[str, Format] = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".csv": "csv",
    ".parquet": "parquet",
}


# -- models ------------------------------------------------------------------
class DatasetPredicateOut(BaseModel):
    name: str
    arity: int
    rows: int


class DatasetVersionOut(BaseModel):
    name: str
    version: int
    hash: str = Field(description="sha256 of the facts in canonical order (entail.dataset.v1)")
    predicates: list[DatasetPredicateOut]
    facts: int
    bytes: int = Field(description="stored size (the Parquet files)")
    created_at: str
    created_by: str
    description: str
    tags: list[str]
    created: bool | None = Field(
        default=None, description="uploads only: false when the content equals the latest version's"
    )


class DatasetListOut(BaseModel):
    datasets: list[DatasetVersionOut]


class DatasetVersionsOut(BaseModel):
    name: str
    versions: list[DatasetVersionOut]


class DatasetFactsOut(BaseModel):
    name: str
    version: int
    predicate: str
    arity: int
    rows: list[list[int | str]]
    next_page_token: str | None


class DatasetPredicateDiffOut(BaseModel):
    predicate: str
    arity: int
    added: int
    removed: int
    added_sample: list[list[int | str]]
    removed_sample: list[list[int | str]]


class DatasetDiffOut(BaseModel):
    name: str
    from_version: int
    to_version: int
    predicates: list[DatasetPredicateDiffOut]


class DatasetTagRequest(BaseModel):
    version: int = Field(ge=1)


class DatasetTagMoveOut(BaseModel):
    tag: str
    version: int
    previous: int | None
    moved_by: str
    moved_at: str


class DatasetTagHistoryOut(BaseModel):
    name: str
    tag: str
    moves: list[DatasetTagMoveOut]


class DatasetUploadProgressOut(BaseModel):
    upload_id: str
    bytes: int
    facts: int
    done: bool


# -- helpers -----------------------------------------------------------------
def version_out(v: DatasetVersion, created: bool | None = None) -> DatasetVersionOut:
    return DatasetVersionOut(
        name=v.name,
        version=v.version,
        hash=v.hash,
        predicates=[DatasetPredicateOut(name=p.name, arity=p.arity, rows=p.rows) for p in v.predicates],
        facts=v.facts,
        bytes=v.bytes,
        created_at=v.created_at,
        created_by=v.created_by,
        description=v.description,
        tags=list(v.tags),
        created=created,
    )


def dataset_problem(exc: DatasetError) -> Problem:
    titles = {
        413: "Upload too large",
        404: "Not found",
        409: "Conflict",
        # the cloud store's Cloud Storage / BigQuery (datasets/cloud_store.py)
        500: "Dataset storage error",
        503: "Dataset storage unavailable",
    }
    detail = f"{exc.where}: {exc}" if exc.where else str(exc)
    extra: dict[str, Any] = {"where": exc.where} if exc.where else {}
    headers = {"Retry-After": "5"} if exc.status == 503 else None
    return Problem(
        exc.status, exc.code, titles.get(exc.status, "Invalid dataset"), detail, headers=headers, **extra
    )


def _check_name(name: str) -> None:
    """A name no dataset can have names none: 404, before any key or path is built from it."""
    if name_problem(name) is not None:
        raise not_found(f"dataset {name!r}")


async def _resolve(services: Services, tenant: str, selector: str) -> DatasetVersion:
    found = await services.datasets.resolve(tenant, selector)
    if found is None:
        raise not_found(f"dataset version {selector!r}")
    return found


def _within(name: str, selector: str) -> str:
    """A ``from``/``to`` of a diff: a version number or tag of ``name``, or a full selector."""
    return selector if "@" in selector or len(selector) == 64 else f"{name}@{selector}"


def _format_of(content_type: str, filename: str | None = None) -> Format | None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _FORMATS:
        return _FORMATS[media]
    if filename:
        for suffix, fmt in _SUFFIXES.items():
            if filename.lower().endswith(suffix):
                return fmt
    return None


async def _body_chunks(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        # nobody reads this answer; the upload's work directory is removed all the same
        raise DatasetError("dataset-upload-aborted", "the client went away mid-upload", status=400) from None


async def _parts(request: Request, predicate: str | None, header: bool, work: FsPath) -> list[UploadPart]:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
        return await _multipart(request, content_type, header, work)
    fmt = _format_of(content_type)
    if fmt is None:
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"Content-Type {content_type or '(none)'!r}: send application/x-ndjson, text/csv "
            "(?predicate=P), application/vnd.apache.parquet (?predicate=P) or multipart/form-data",
        )
    if fmt != "ndjson" and predicate is None:
        raise Problem(
            422,
            "dataset-predicate-missing",
            "Invalid dataset",
            f"a {fmt} body is one predicate: name it with ?predicate=P",
        )
    return [UploadPart(fmt, _body_chunks(request), predicate=predicate, header=header)]


async def _multipart(request: Request, content_type: str, header: bool, work: FsPath) -> list[UploadPart]:
    """One part per predicate, each spooled to a file as it streams (multipart.py)."""
    max_bytes = request.app.state.services.settings.dataset_max_bytes
    spooled = await multipart.spool_parts(
        _body_chunks(request), multipart.boundary_of(content_type), work, max_bytes
    )
    parts: list[UploadPart] = []
    for part in spooled:
        fmt = _format_of(part.content_type, part.filename)
        if fmt is None:
            # the body's media type is supported: a part that names no format is a bad part
            raise Problem(
                422,
                "dataset-part-format",
                "Invalid dataset",
                f"part {part.name!r}: content type {part.content_type!r} and file name "
                f"{part.filename!r} name no format (.ndjson, .csv, .parquet)",
            )
        if fmt != "ndjson" and (problem := predicate_problem(part.name)):
            raise Problem(422, "dataset-predicate-name", "Invalid dataset", f"part {part.name!r}: {problem}")
        parts.append(
            UploadPart(
                fmt,
                multipart.file_chunks(part.path),
                predicate=part.name if fmt != "ndjson" else None,
                header=header,
            )
        )
    if not parts:
        raise Problem(422, "dataset-empty-upload", "Invalid dataset", "the multipart body has no parts")
    return parts


# -- routes ------------------------------------------------------------------
Name = Annotated[str, Path(description="the dataset's name", max_length=64)]
UploadName = Annotated[str, Path(description="the dataset's name", pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
# one path parameter name for a dataset's name and a selector: GET and POST of
# /v1/datasets/{name} are one path (OPTIONS answers both in Allow)
Selector = Annotated[
    str, Path(description="name, name@latest, name@N, name@tag or a version hash", max_length=200)
]
PREDICATE_PATTERN = r"^[a-z][A-Za-z0-9_]{0,63}$"
TAG_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"


@router.post(
    "/{name}",
    response_model=DatasetVersionOut,
    status_code=201,
    responses={
        200: {"description": "the content is the latest version's: that version", "model": DatasetVersionOut},
        201: {"description": "a new version"},
        404: {"description": "?base= names no version of this dataset"},
        413: {"description": "past ENTAIL_DATASET_MAX_FACTS, _MAX_BYTES or _TENANT_MAX_BYTES"},
        415: {"description": "a Content-Type that names no format"},
        422: {"description": "a malformed line, cell or file: the problem names part, line and column"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {"schema": {"type": "object", "additionalProperties": True}},
            },
        }
    },
)
async def upload_dataset(
    name: UploadName,
    request: Request,
    response: Response,
    services: ServicesDep,
    key: Author,
    predicate: Annotated[
        str | None, Query(description="CSV and Parquet bodies: the predicate", pattern=PREDICATE_PATTERN)
    ] = None,
    header: Annotated[bool, Query(description="CSV: the first line names the columns")] = False,
    base: Annotated[
        str | None, Query(description="carry over this version's predicates the upload does not name")
    ] = None,
    tag: Annotated[str | None, Query(description="move this tag to the version", pattern=TAG_PATTERN)] = None,
    description: Annotated[str, Query(max_length=2000)] = "",
    upload_id: Annotated[
        str | None,
        Header(
            alias="X-Entail-Upload-Id",
            description="report progress under this id",
            pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        ),
    ] = None,
) -> DatasetVersionOut:
    """Upload a new version (streamed, never whole in memory). The same content as the
    latest version returns that version (200)."""
    problem = name_problem(name)
    if problem:
        raise Problem(422, "dataset-name", "Invalid dataset", problem)
    if tag is not None and (problem := tag_problem(tag)):
        raise Problem(422, "dataset-tag", "Invalid dataset", problem)
    if predicate is not None and (problem := predicate_problem(predicate)):
        raise Problem(422, "dataset-predicate-name", "Invalid dataset", problem)
    if upload_id is not None and not UPLOAD_ID_RE.match(upload_id):
        raise Problem(
            422, "invalid-upload-id", "Invalid request", "X-Entail-Upload-Id: letters, digits, '_', '.', '-'"
        )
    settings = services.settings
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.dataset_max_bytes:
        raise Problem(
            413,
            "dataset-too-large",
            "Upload too large",
            f"the body is {declared} bytes; ENTAIL_DATASET_MAX_BYTES is {settings.dataset_max_bytes}",
        )
    seen = Progress()
    work = settings.data_dir / "datasets" / f".multipart-{secrets.token_hex(8)}"
    try:
        async with upload_progress.published(services.redis, key.tenant, upload_id, seen):
            try:
                parts = await _parts(request, predicate, header, work)
                version, created = await services.datasets.ingest(
                    key.tenant,
                    name,
                    parts,
                    created_by=key.id,
                    description=description,
                    base=base,
                    progress=seen,
                )
            finally:
                await asyncio.to_thread(shutil.rmtree, work, True)
        if tag is not None:
            await services.datasets.tag(key.tenant, name, tag, version.version, by=key.id)
            version = await _resolve(services, key.tenant, version.ref)
    except DatasetError as exc:
        raise dataset_problem(exc) from None
    response.status_code = 201 if created else 200
    return version_out(version, created)


@router.get("", response_model=DatasetListOut)
async def list_datasets(services: ServicesDep, key: Reader) -> DatasetListOut:
    """Each dataset's latest version."""
    return DatasetListOut(datasets=[version_out(v) for v in await services.datasets.names(key.tenant)])


@router.get("/{name}", response_model=DatasetVersionOut, responses={404: {"description": "no such version"}})
async def get_dataset_version(name: Selector, services: ServicesDep, key: Reader) -> DatasetVersionOut:
    """One version's metadata: predicates, row counts, size, tags. ``name`` may be any
    selector: ``name@3``, ``name@prod``, a version hash."""
    return version_out(await _resolve(services, key.tenant, name))


@router.get(
    "/{name}/versions", response_model=DatasetVersionsOut, responses={404: {"description": "no such dataset"}}
)
async def list_dataset_versions(name: Name, services: ServicesDep, key: Reader) -> DatasetVersionsOut:
    """Every version, newest first."""
    _check_name(name)
    found = await services.datasets.versions(key.tenant, name)
    if not found:
        raise not_found(f"dataset {name!r}")
    return DatasetVersionsOut(name=name, versions=[version_out(v) for v in found])


@router.get(
    "/{name}/facts",
    response_model=DatasetFactsOut,
    responses={404: {"description": "no such version or predicate"}},
)
async def dataset_facts(
    name: Selector,
    services: ServicesDep,
    key: Reader,
    predicate: Annotated[str, Query(description="the predicate whose rows to list")],
    page_size: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    page_token: Annotated[str | None, Query(pattern=r"^[0-9]{1,15}$")] = None,
) -> DatasetFactsOut:
    """Rows of one predicate in canonical order, paged (``name`` may be any selector)."""
    version = await _resolve(services, key.tenant, name)
    offset = 0
    if page_token is not None:
        if not page_token.isdigit():
            raise Problem(
                422, "invalid-page-token", "Invalid request", f"page_token {page_token!r} is not one we gave"
            )
        offset = int(page_token)
    try:
        rows = await services.datasets.page(version, predicate, offset, page_size + 1)
    except DatasetError as exc:
        raise dataset_problem(exc) from None
    arity = next(p.arity for p in version.predicates if p.name == predicate)
    more = len(rows) > page_size
    return DatasetFactsOut(
        name=version.name,
        version=version.version,
        predicate=predicate,
        arity=arity,
        rows=[list(r) for r in rows[:page_size]],
        next_page_token=str(offset + page_size) if more else None,
    )


@router.get(
    "/{name}/diff",
    response_model=DatasetDiffOut,
    responses={404: {"description": "no such dataset or version"}},
)
async def dataset_diff(
    name: Name,
    services: ServicesDep,
    key: Reader,
    from_: Annotated[
        str, Query(alias="from", description="a version number, tag or selector", max_length=200)
    ],
    to: Annotated[str, Query(description="a version number, tag or selector", max_length=200)] = "latest",
    sample: Annotated[int, Query(ge=0, le=1000)] = 100,
) -> DatasetDiffOut:
    """Per predicate: facts added and removed from ``from`` to ``to``, with samples."""
    _check_name(name)
    a = await _resolve(services, key.tenant, _within(name, from_))
    b = await _resolve(services, key.tenant, _within(name, to))
    if a.name != name or b.name != name:
        raise Problem(
            422, "dataset-diff-names", "Invalid request", f"both versions must be of dataset {name!r}"
        )
    found = await services.datasets.diff(a, b, sample=sample)
    return DatasetDiffOut(
        name=name,
        from_version=a.version,
        to_version=b.version,
        predicates=[
            DatasetPredicateDiffOut(
                predicate=d.predicate,
                arity=d.arity,
                added=d.added,
                removed=d.removed,
                added_sample=[list(r) for r in d.added_sample],
                removed_sample=[list(r) for r in d.removed_sample],
            )
            for d in found
        ],
    )


@router.put(
    "/{name}/tags/{tag}",
    response_model=DatasetTagMoveOut,
    responses={404: {"description": "no such dataset version"}},
)
async def move_dataset_tag(
    name: Name,
    tag: Annotated[str, Path(pattern=TAG_PATTERN)],
    body: Annotated[DatasetTagRequest, Body()],
    services: ServicesDep,
    key: Author,
) -> DatasetTagMoveOut:
    """Point ``tag`` at a version; the move joins the tag's history."""
    _check_name(name)
    try:
        await services.datasets.tag(key.tenant, name, tag, body.version, by=key.id)
    except DatasetError as exc:
        raise dataset_problem(exc) from None
    history = await services.datasets.tag_history(key.tenant, name, tag)
    return DatasetTagMoveOut.model_validate(history[0])


@router.get(
    "/{name}/tags/{tag}",
    response_model=DatasetTagHistoryOut,
    responses={404: {"description": "the tag was never set"}},
)
async def dataset_tag_history(
    name: Name, tag: Annotated[str, Path(max_length=32)], services: ServicesDep, key: Reader
) -> DatasetTagHistoryOut:
    """The tag's moves, newest first."""
    _check_name(name)
    moves = await services.datasets.tag_history(key.tenant, name, tag)
    if not moves:
        raise not_found(f"tag {tag!r} of dataset {name!r}")
    return DatasetTagHistoryOut(
        name=name, tag=tag, moves=[DatasetTagMoveOut.model_validate(m) for m in moves]
    )


@router.get(
    "/{name}/uploads/{upload_id}",
    response_model=DatasetUploadProgressOut,
    responses={404: {"description": "no upload of the caller's tenant has this id (or it expired)"}},
)
async def dataset_upload_status(
    name: Name,
    upload_id: Annotated[str, Path(max_length=64)],
    services: ServicesDep,
    key: Reader,
) -> DatasetUploadProgressOut:
    """An upload's progress: bytes and facts read so far (``X-Entail-Upload-Id``)."""
    found = None
    if UPLOAD_ID_RE.match(upload_id):
        found = await upload_progress.read(services.redis, key.tenant, upload_id)
    if found is None:
        raise not_found(f"upload {upload_id!r}")
    return DatasetUploadProgressOut(
        upload_id=upload_id, bytes=int(found["bytes"]), facts=int(found["facts"]), done=bool(found["done"])
    )


__all__ = ["router", "version_out"]
