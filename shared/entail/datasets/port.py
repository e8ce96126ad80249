"""The dataset store's port: versioned, immutable, content-hashed reference data.

A dataset is a named set of ground facts of one tenant (an org chart, a rate
table, a sanctions list). Each upload makes a new version; a version never
changes, and its ``hash`` is the sha256 of its facts in canonical order
(``entail.dataset.v1``, docs/datasets.md). Selectors are the rulesets' ones:
``name`` / ``name@latest``, ``name@3``, ``name@prod`` (a tag), or a version's
hash.

Values are the JSON values of case facts: ``int`` (32-bit) or ``str``. Whether a
string is a string or a symbolic constant is the reading program's business (its
``%@dataset`` declaration), exactly as with ``%@input`` for case facts.

Adapters: ``local_store.py`` (DuckDB/Parquet files on disk, metadata in Redis)
and ``cloud_store.py`` (Parquet objects in a GCS bucket, a BigQuery table per
predicate, metadata in Redis). The composition root chooses one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Value = int | str
Row = tuple[Value, ...]
#: how an upload's bytes are written
Format = Literal["ndjson", "csv", "parquet"]


@dataclass(frozen=True)
class PredicateStats:
    name: str
    arity: int
    rows: int


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version: what a decision pins (name, version, hash)."""

    tenant: str
    name: str
    version: int
    hash: str
    predicates: tuple[PredicateStats, ...]
    facts: int
    bytes: int  # stored size
    created_at: str  # RFC 3339, UTC, milliseconds
    created_by: str  # the key id that uploaded it
    description: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class UploadPart:
    """One stream of an upload: ``predicate`` is None for NDJSON (each line names its
    own predicate), required for CSV and Parquet (one predicate per part)."""

    format: Format
    chunks: AsyncIterator[bytes]
    predicate: str | None = None
    header: bool = False  # CSV: the first line names the columns (skipped)


@dataclass
class Progress:
    """What an upload has read so far (``GET /v1/datasets/{name}/uploads/{id}``);
    the store updates it as it reads, the caller publishes it."""

    bytes: int = 0
    facts: int = 0
    done: bool = False


@dataclass(frozen=True)
class FactDiff:
    predicate: str
    arity: int
    added: int
    removed: int
    added_sample: tuple[Row, ...]
    removed_sample: tuple[Row, ...]


class DatasetError(Exception):
    """A problem with the caller's input (a 4xx): ``code`` names it for problem+json,
    ``pointer`` locates it (``line 12, column 3`` of part ``edge``)."""

    def __init__(self, code: str, message: str, *, status: int = 422, where: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.where = where


class DatasetStore(Protocol):
    """What the application layer needs from dataset storage."""

    async def ingest(
        self,
        tenant: str,
        name: str,
        parts: Sequence[UploadPart],
        *,
        created_by: str,
        description: str = "",
        base: str | None = None,
        progress: Progress | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Stream ``parts`` into a new version (never whole in memory) and return it with
        ``True``; if its hash equals the latest version's, no version is made and that
        one is returned with ``False``. ``base``: a selector whose predicates the upload
        does not name are carried over. ``progress`` is updated as the parts are read.
        Raises DatasetError."""
        ...

    async def resolve(self, tenant: str, selector: str) -> DatasetVersion | None: ...

    async def get(self, tenant: str, name: str, version: int) -> DatasetVersion | None: ...

    async def versions(self, tenant: str, name: str) -> list[DatasetVersion]: ...

    async def names(self, tenant: str) -> list[DatasetVersion]:
        """Each dataset's latest version."""
        ...

    async def tag(self, tenant: str, name: str, tag: str, version: int, *, by: str) -> None: ...

    async def tag_history(self, tenant: str, name: str, tag: str) -> list[dict[str, object]]: ...

    async def page(self, version: DatasetVersion, predicate: str, offset: int, limit: int) -> list[Row]:
        """Rows of one predicate in canonical order."""
        ...

    async def diff(self, a: DatasetVersion, b: DatasetVersion, *, sample: int = 100) -> list[FactDiff]: ...

    def read(self, version: DatasetVersion) -> Iterator[tuple[str, int, Iterator[Row]]]:
        """Every predicate of ``version`` as (name, arity, rows): what a worker loads.
        Blocking (a worker calls it in a thread); verifies the content hash."""
        ...
