"""The local dataset store: Parquet files on disk, metadata, tags and history in Redis.

Files: ``<root>/<tenant>/<name>/<version>/<predicate>.parquet`` (``root`` is
``<data_dir>/datasets``), written by :mod:`.ingest` in a work directory beside
them and renamed into place. Keys: ``entail:ds:...`` (:mod:`entail.state.keys`).

Version numbers come from one ``INCR`` per dataset, so concurrent uploads (from
any number of backends) get distinct numbers; the version is then committed by
one Lua script, which also refuses a version whose content equals the latest's
(a race between two identical uploads makes one version) and charges the
tenant's byte cap atomically.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import json
import re
import secrets
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import redis.asyncio as aioredis

from ..models import utcnow
from ..state import keys
from ..state.durability import Durability
from .ingest import (
    Builder,
    IngestResult,
    Limits,
    columns_of,
    content_hash,
    name_problem,
    order_by,
    rows_of,
    sql_path,
)
from .port import DatasetError, DatasetVersion, FactDiff, PredicateStats, Progress, Row, UploadPart

TAG_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")
HASH_RE = re.compile(r"[0-9a-f]{64}\Z")
VERSION_RE = re.compile(r"[0-9]{1,15}\Z")
TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")

# KEYS: versions, names, byhash, tenant bytes; ARGV: name, version, version JSON,
# hash, bytes, tenant byte cap.
# Returns {1, json} (committed), {0, latest json} (the latest version has this
# content: nothing committed), {-1, used} (past the tenant's byte cap).
_COMMIT = """
local latest = redis.call('HGET', KEYS[2], ARGV[1])
if latest then
  local stored = redis.call('HGET', KEYS[1], latest)
  if stored and cjson.decode(stored)['hash'] == ARGV[4] then return {0, stored} end
end
local used = tonumber(redis.call('GET', KEYS[4]) or '0')
if used + tonumber(ARGV[5]) > tonumber(ARGV[6]) then return {-1, tostring(used)} end
redis.call('INCRBY', KEYS[4], ARGV[5])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if (not latest) or tonumber(latest) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
redis.call('HSET', KEYS[3], ARGV[4], ARGV[1] .. '@' .. ARGV[2])
return {1, ARGV[3]}
"""

# KEYS: tags, taglog, versions; ARGV: tag, version, move JSON. False: no such version.
_SET_TAG = """
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 0 then return false end
local previous = redis.call('HGET', KEYS[1], ARGV[1])
local move = cjson.decode(ARGV[3])
if previous then move['previous'] = tonumber(previous) end
local text = cjson.encode(move)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('LPUSH', KEYS[2], text)
return text
"""


def tag_problem(tag: str) -> str | None:
    if TAG_RE.match(tag) and tag != "latest":
        return None
    return (
        f"invalid tag {tag!r}: lower-case letters, digits, '_' and '-', starting with a letter "
        "(at most 32; not 'latest')"
    )


def _encode(version: DatasetVersion) -> str:
    data = dataclasses.asdict(version)
    data.pop("tags")
    return json.dumps(data, separators=(",", ":"))


def _decode(raw: bytes | str, tags: Sequence[str] = ()) -> DatasetVersion:
    data = json.loads(raw)
    data["predicates"] = tuple(PredicateStats(**p) for p in data["predicates"])
    data["tags"] = tuple(tags)
    return DatasetVersion(**data)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class LocalDatasetStore:
    """:class:`~entail.datasets.port.DatasetStore` over files under ``root`` and Redis."""

    def __init__(
        self,
        redis: aioredis.Redis,
        root: Path,
        *,
        durability: Durability | None = None,
        max_facts: int = 10_000_000,
        max_bytes: int = 2 << 30,
        tenant_max_bytes: int = 20 << 30,
    ) -> None:
        self.redis = redis
        self.root = root
        self.durability = durability or Durability(redis, replicas=0)
        self.max_facts = max_facts
        self.max_bytes = max_bytes
        self.tenant_max_bytes = tenant_max_bytes

    # -- paths ---------------------------------------------------------------
    def _dataset_dir(self, tenant: str, name: str) -> Path:
        # names are checked (NAME_RE, TENANT_RE): no separator, no '..'
        return self.root / tenant / name

    def version_dir(self, version: DatasetVersion) -> Path:
        return self._dataset_dir(version.tenant, version.name) / str(version.version)

    def predicate_file(self, version: DatasetVersion, predicate: str) -> Path:
        return self.version_dir(version) / f"{predicate}.parquet"

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
        problem = name_problem(name)
        if problem:
            raise DatasetError("dataset-name", problem)
        if not TENANT_RE.match(tenant):
            raise DatasetError("dataset-name", f"tenant {tenant!r} cannot name a directory")
        if not parts:
            raise DatasetError("dataset-empty-upload", "the upload has no parts")
        base_version: DatasetVersion | None = None
        if base is not None:
            base_version = await self.resolve(tenant, base)
            if base_version is None or base_version.name != name:
                raise DatasetError(
                    "dataset-not-found", f"base {base!r} is no version of dataset {name!r}", status=404
                )
        used = int(await self.redis.get(keys.dataset_tenant(tenant, "bytes")) or 0)
        limits = Limits(self.max_facts, self.max_bytes, max(0, self.tenant_max_bytes - used))
        home = self._dataset_dir(tenant, name)
        builder = Builder(home / f".upload-{secrets.token_hex(8)}", limits, progress)
        try:
            for index, part in enumerate(parts):
                label = part.predicate or ("body" if len(parts) == 1 else str(index + 1))
                spool = await builder.spool(part, index)
                await asyncio.to_thread(builder.parse_spool, part, spool, label)
            carried: list[tuple[PredicateStats, Path]] = []
            if base_version is not None:
                carried = [(p, self.predicate_file(base_version, p.name)) for p in base_version.predicates]
            result = await asyncio.to_thread(builder.build, carried)
            return await self._commit(tenant, name, result, created_by, description)
        finally:
            builder.progress.done = True
            await asyncio.to_thread(builder.close)

    async def _commit(
        self, tenant: str, name: str, result: IngestResult, created_by: str, description: str
    ) -> tuple[DatasetVersion, bool]:
        latest = await self.resolve(tenant, f"{name}@latest")
        if latest is not None and latest.hash == result.hash:
            return await self._with_tags(latest), False
        number = int(await self.redis.incr(keys.dataset(tenant, name, "next")))
        version = DatasetVersion(
            tenant=tenant,
            name=name,
            version=number,
            hash=result.hash,
            predicates=result.predicates,
            facts=result.facts,
            bytes=result.bytes,
            created_at=utcnow(),
            created_by=created_by,
            description=description,
        )
        await self._place(version, result.directory)
        script_keys = [
            keys.dataset(tenant, name, "versions"),
            keys.dataset_tenant(tenant, "names"),
            keys.dataset_tenant(tenant, "byhash"),
            keys.dataset_tenant(tenant, "bytes"),
        ]
        ((status, text),) = await self.durability.write(
            lambda pipe: pipe.eval(
                _COMMIT,
                len(script_keys),
                *script_keys,
                name,
                str(number),
                _encode(version),
                result.hash,
                str(result.bytes),
                str(self.tenant_max_bytes),
            )
        )
        if int(status) != 1:
            await self._discard(version)
            if int(status) == -1:
                raise DatasetError(
                    "dataset-tenant-quota",
                    f"the tenant's datasets hold {_text(text)} bytes; this version's {result.bytes} "
                    f"would pass ENTAIL_DATASET_TENANT_MAX_BYTES ({self.tenant_max_bytes})",
                    status=413,
                )
            return await self._with_tags(_decode(text)), False
        return version, True

    async def _place(self, version: DatasetVersion, built: Path) -> None:
        """Store a new version's built files (``built/<predicate>.parquet``) before its
        metadata is committed; the cloud store uploads them (cloud_store.py)."""
        await asyncio.to_thread(built.rename, self.version_dir(version))

    async def _discard(self, version: DatasetVersion) -> None:
        """Undo :meth:`_place` of a version whose commit was refused."""
        await asyncio.to_thread(shutil.rmtree, self.version_dir(version), True)

    async def tag(self, tenant: str, name: str, tag: str, version: int, *, by: str) -> None:
        problem = tag_problem(tag)
        if problem:
            raise DatasetError("dataset-tag", problem)
        move = {"tag": tag, "version": version, "previous": None, "moved_by": by, "moved_at": utcnow()}
        script_keys = [
            keys.dataset(tenant, name, "tags"),
            keys.dataset(tenant, name, "taglog"),
            keys.dataset(tenant, name, "versions"),
        ]
        (text,) = await self.durability.write(
            lambda pipe: pipe.eval(
                _SET_TAG, len(script_keys), *script_keys, tag, str(version), json.dumps(move)
            )
        )
        if text is None:
            raise DatasetError("dataset-not-found", f"no version {version} of dataset {name!r}", status=404)

    # -- reading -------------------------------------------------------------
    async def _tags_of(self, tenant: str, name: str) -> dict[int, list[str]]:
        raw = await self.redis.hgetall(keys.dataset(tenant, name, "tags"))
        by_version: dict[int, list[str]] = {}
        for tag, number in sorted(raw.items()):
            by_version.setdefault(int(number), []).append(_text(tag))
        return by_version

    async def _with_tags(self, version: DatasetVersion) -> DatasetVersion:
        tags = (await self._tags_of(version.tenant, version.name)).get(version.version, [])
        return dataclasses.replace(version, tags=tuple(tags))

    async def get(self, tenant: str, name: str, version: int) -> DatasetVersion | None:
        raw = await self.redis.hget(keys.dataset(tenant, name, "versions"), str(version))
        if raw is None:
            return None
        return await self._with_tags(_decode(raw))

    async def resolve(self, tenant: str, selector: str) -> DatasetVersion | None:
        """``name``, ``name@latest``, ``name@3``, ``name@tag`` or a content hash of this
        tenant (another tenant's hash resolves to None)."""
        if HASH_RE.match(selector):
            located = await self.redis.hget(keys.dataset_tenant(tenant, "byhash"), selector)
            if located is None:
                return None
            name, _, number = _text(located).rpartition("@")
            return await self.get(tenant, name, int(number))
        name, at, rest = selector.partition("@")
        if name_problem(name):
            return None
        if not at or rest == "latest":
            latest = await self.redis.hget(keys.dataset_tenant(tenant, "names"), name)
            return await self.get(tenant, name, int(latest)) if latest is not None else None
        if VERSION_RE.match(rest):
            return await self.get(tenant, name, int(rest))
        if not TAG_RE.match(rest):
            return None
        tagged = await self.redis.hget(keys.dataset(tenant, name, "tags"), rest)
        return await self.get(tenant, name, int(tagged)) if tagged is not None else None

    async def versions(self, tenant: str, name: str) -> builtins.list[DatasetVersion]:
        raw = await self.redis.hgetall(keys.dataset(tenant, name, "versions"))
        tags = await self._tags_of(tenant, name)
        found = [_decode(v) for v in raw.values()]
        return sorted(
            (dataclasses.replace(v, tags=tuple(tags.get(v.version, []))) for v in found),
            key=lambda v: -v.version,
        )

    async def names(self, tenant: str) -> builtins.list[DatasetVersion]:
        latest = await self.redis.hgetall(keys.dataset_tenant(tenant, "names"))
        found = [await self.get(tenant, _text(n), int(v)) for n, v in sorted(latest.items())]
        return [v for v in found if v is not None]

    async def tag_history(self, tenant: str, name: str, tag: str) -> builtins.list[dict[str, object]]:
        raw = await self.redis.lrange(keys.dataset(tenant, name, "taglog"), 0, -1)
        moves = [json.loads(r) for r in raw]
        return [m for m in moves if m.get("tag") == tag]

    async def page(self, version: DatasetVersion, predicate: str, offset: int, limit: int) -> list[Row]:
        stats = next((p for p in version.predicates if p.name == predicate), None)
        if stats is None:
            raise DatasetError(
                "dataset-predicate-not-found",
                f"{version.ref} has no predicate {predicate!r}",
                status=404,
            )
        path = self.predicate_file(version, predicate)
        return await asyncio.to_thread(lambda: list(rows_of(path, stats.arity, offset=offset, limit=limit)))

    async def diff(self, a: DatasetVersion, b: DatasetVersion, *, sample: int = 100) -> list[FactDiff]:
        return await asyncio.to_thread(self._diff, a, b, sample)

    def _diff(self, a: DatasetVersion, b: DatasetVersion, sample: int) -> list[FactDiff]:
        old = {p.name: p for p in a.predicates}
        new = {p.name: p for p in b.predicates}
        found: list[FactDiff] = []
        con = duckdb.connect()
        try:
            for name in sorted(set(old) | set(new)):
                before, after = old.get(name), new.get(name)
                arity = (after or before).arity  # type: ignore[union-attr]
                same_shape = before is not None and after is not None and before.arity == after.arity
                if same_shape and self._same_file(a, b, name):
                    continue
                added = removed = 0
                added_rows: list[Row] = []
                removed_rows: list[Row] = []
                if after is not None:
                    source = self.predicate_file(b, name)
                    other = self.predicate_file(a, name) if same_shape else None
                    added, added_rows = _except(con, source, other, after.arity, sample)
                if before is not None:
                    source = self.predicate_file(a, name)
                    other = self.predicate_file(b, name) if same_shape else None
                    removed, removed_rows = _except(con, source, other, before.arity, sample)
                if added or removed or not same_shape:
                    found.append(
                        FactDiff(name, arity, added, removed, tuple(added_rows), tuple(removed_rows))
                    )
        finally:
            con.close()
        return found

    def _same_file(self, a: DatasetVersion, b: DatasetVersion, name: str) -> bool:
        return a.hash == b.hash

    def read(self, version: DatasetVersion) -> Iterator[tuple[str, int, Iterator[Row]]]:
        directory = self.version_dir(version)
        if content_hash(directory, version.predicates) != version.hash:
            raise DatasetError(
                "dataset-corrupt",
                f"the files of {version.ref} do not hash to {version.hash}",
                status=500,
            )
        for stats in version.predicates:
            yield stats.name, stats.arity, rows_of(directory / f"{stats.name}.parquet", stats.arity)


def _except(
    con: duckdb.DuckDBPyConnection, source: Path, other: Path | None, arity: int, sample: int
) -> tuple[int, list[Row]]:
    """Rows of ``source`` not in ``other`` (all of them when None): count and the
    first ``sample`` in canonical order."""
    columns = ", ".join(columns_of(arity))
    query = f"SELECT {columns} FROM read_parquet('{sql_path(source)}')"
    if other is not None:
        query += f" EXCEPT SELECT {columns} FROM read_parquet('{sql_path(other)}')"
    count = con.execute(f"SELECT count(*) FROM ({query})").fetchone()
    total = int(count[0]) if count else 0
    rows: list[Row] = []
    if total and sample > 0:
        for record in con.execute(
            f"SELECT * FROM ({query}) ORDER BY {order_by(arity)} LIMIT {int(sample)}"
        ).fetchall():
            if arity == 0:
                rows.append(())
            else:
                rows.append(
                    tuple(
                        record[j] if record[j] is not None else record[j + 1] for j in range(0, 2 * arity, 2)
                    )
                )
    return total, rows
