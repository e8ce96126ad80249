"""The cloud dataset store: Parquet objects in Cloud Storage, a BigQuery table per
predicate, metadata, tags and history in Redis (docs/datasets.md, "Storage").

It is the local store (:class:`~.local_store.LocalDatasetStore`) with another
place for the files: an upload is parsed and built into canonical Parquet files
exactly as locally (:mod:`.ingest`, in a scratch directory), then, before the
version's metadata is committed in Redis,

1. each file becomes the object ``datasets/<tenant>/<name>/<version>/<predicate>.parquet``
   of the bucket, created once (``ifGenerationMatch=0``, :mod:`.gcs_objects`);
2. its rows are appended to the predicate's BigQuery table with ``version = N``
   (:mod:`.bigquery_tables`), which the SQL batch path reads.

A version is visible only once its metadata is committed, so a failure in
between leaves nothing a reader can see: the version number is skipped (its
orphaned objects are never read; the backend may not delete them) and rows
already loaded for it are deleted. Version numbers, the identical-content check,
the tenant's byte cap, tags and their history are the local store's (Redis).

Reading: :meth:`read` (the worker) downloads the version's objects into a scratch
directory and verifies the content hash before it yields a row; pages and diffs
(the backend) keep a verified copy under ``root`` (a version never changes, so
the copy never goes stale) for the ``cache_versions`` versions used last: on
Cloud Run the file system is the instance's memory. A copy used in the last
``cache_grace_s`` is never evicted (a page or diff may be reading it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import redis.asyncio as aioredis

from ..state.durability import Durability
from .bigquery_tables import DatasetTables
from .gcs_objects import GcsObjects
from .ingest import content_hash, rows_of
from .local_store import LocalDatasetStore
from .port import DatasetError, DatasetVersion, FactDiff, Progress, Row, UploadPart

log = logging.getLogger(__name__)


def object_name(version: DatasetVersion, predicate: str) -> str:
    """``datasets/<tenant>/<name>/<version>/<predicate>.parquet`` (names are checked:
    no ``/``, no ``..``)."""
    return f"datasets/{version.tenant}/{version.name}/{version.version}/{predicate}.parquet"


class CloudDatasetStore(LocalDatasetStore):
    """:class:`~entail.datasets.port.DatasetStore` over a bucket, BigQuery and Redis.

    ``root``: this process's scratch space (uploads being built, verified copies
    for pages and diffs). ``tables``: None where no BigQuery is configured (the
    objects and metadata alone; the SQL batch path then has no tables)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        root: Path,
        objects: GcsObjects,
        tables: DatasetTables | None,
        *,
        durability: Durability | None = None,
        max_facts: int = 10_000_000,
        max_bytes: int = 2 << 30,
        tenant_max_bytes: int = 20 << 30,
        cache_versions: int = 8,
        cache_grace_s: float = 300.0,
    ) -> None:
        super().__init__(
            redis,
            root,
            durability=durability,
            max_facts=max_facts,
            max_bytes=max_bytes,
            tenant_max_bytes=tenant_max_bytes,
        )
        self.objects = objects
        self.tables = tables
        self.cache_versions = cache_versions
        self.cache_grace_s = cache_grace_s

    # -- writing -------------------------------------------------------------
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
        if base is not None:
            # the base's files are carried over from a local copy: fetch it first
            found = await self.resolve(tenant, base)
            if found is not None and found.name == name:
                await asyncio.to_thread(self._ensure_local, found)
        return await super().ingest(
            tenant,
            name,
            parts,
            created_by=created_by,
            description=description,
            base=base,
            progress=progress,
        )

    async def _place(self, version: DatasetVersion, built: Path) -> None:
        await asyncio.to_thread(self._upload, version, built)
        await super()._place(version, built)  # the verified local copy
        await asyncio.to_thread(self._evict, self.version_dir(version))

    def _upload(self, version: DatasetVersion, built: Path) -> None:
        for stats in version.predicates:
            self.objects.create(object_name(version, stats.name), built / f"{stats.name}.parquet")
        if self.tables is None:
            return
        try:
            self.tables.load(version, built)
        except BaseException:
            self._remove_rows(version)
            raise

    async def _discard(self, version: DatasetVersion) -> None:
        await super()._discard(version)
        await asyncio.to_thread(self._remove_rows, version)

    def _remove_rows(self, version: DatasetVersion) -> None:
        """Best effort: rows of a version that is not committed are never read (the
        batch path reads committed versions only), so a failure here leaves garbage,
        not a wrong answer."""
        if self.tables is None:
            return
        try:
            self.tables.remove(version)
        except DatasetError as e:
            log.warning("dataset %s: rows of the uncommitted version stay in BigQuery: %s", version.ref, e)

    # -- reading -------------------------------------------------------------
    def _download(self, version: DatasetVersion, directory: Path) -> None:
        """Every object of ``version`` into ``directory``, verified against its hash."""
        for stats in version.predicates:
            self.objects.download(object_name(version, stats.name), directory / f"{stats.name}.parquet")
        if content_hash(directory, version.predicates) != version.hash:
            raise DatasetError(
                "dataset-corrupt",
                f"the objects of {version.ref} in gs://{self.objects.bucket} do not hash to {version.hash}",
                status=500,
            )

    def _ensure_local(self, version: DatasetVersion) -> None:
        """A verified copy of ``version``'s files at :meth:`version_dir` (made once)."""
        target = self.version_dir(version)
        if target.is_dir():
            with contextlib.suppress(FileNotFoundError):  # evicted just now: fetched below
                os.utime(target)  # used: the last to be evicted
                return
        target.parent.mkdir(parents=True, exist_ok=True)
        work = target.parent / f".download-{secrets.token_hex(8)}"
        work.mkdir()
        try:
            self._download(version, work)
            try:
                work.rename(target)
            except OSError:
                if not target.is_dir():  # not a concurrent download that won the rename
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self._evict(target)

    def _evict(self, keep: Path) -> None:
        """Remove the least recently used copies past ``cache_versions`` (never ``keep``,
        never one used within ``cache_grace_s``)."""
        copies = []
        for path in self.root.glob("*/*/*"):
            if path != keep and path.name.isdigit():
                with contextlib.suppress(FileNotFoundError):
                    copies.append((path.stat().st_mtime, path))
        excess = len(copies) + 1 - self.cache_versions
        if excess <= 0:
            return
        now = time.time()
        for used, path in sorted(copies)[:excess]:
            if now - used >= self.cache_grace_s:
                shutil.rmtree(path, ignore_errors=True)

    async def page(self, version: DatasetVersion, predicate: str, offset: int, limit: int) -> list[Row]:
        if any(p.name == predicate for p in version.predicates):
            await asyncio.to_thread(self._ensure_local, version)
        return await super().page(version, predicate, offset, limit)

    async def diff(self, a: DatasetVersion, b: DatasetVersion, *, sample: int = 100) -> list[FactDiff]:
        await asyncio.to_thread(self._ensure_local, a)
        await asyncio.to_thread(self._ensure_local, b)
        return await super().diff(a, b, sample=sample)

    def read(self, version: DatasetVersion) -> Iterator[tuple[str, int, Iterator[Row]]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".read-", dir=self.root) as scratch:
            work = Path(scratch)
            self._download(version, work)
            for stats in version.predicates:
                yield stats.name, stats.arity, rows_of(work / f"{stats.name}.parquet", stats.arity)

    def close(self) -> None:
        self.objects.close()
        if self.tables is not None:
            self.tables.client.close()  # type: ignore[no-untyped-call]
