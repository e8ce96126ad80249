"""The local dataset store on a real Redis and real files: versions, identical
content, selectors, tags, diff, paging, the hash check on read, caps and races."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from entail.datasets.ingest import canonical_hash
from entail.datasets.local_store import LocalDatasetStore
from entail.datasets.port import DatasetError, Progress, UploadPart


async def _chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def ndjson(*lines: str) -> list[UploadPart]:
    return [UploadPart("ndjson", _chunks(("\n".join(lines) + "\n").encode()))]


def store(redis: aioredis.Redis, tmp_path: Path, **caps: Any) -> LocalDatasetStore:
    return LocalDatasetStore(redis, tmp_path / "datasets", **caps)


ORG = (
    '{"predicate": "manages", "args": ["alice", "bob"]}',
    '{"predicate": "manages", "args": ["bob", "carol"]}',
    '["limit", "alice", 10000]',
    '["limit", "bob", 1000]',
    '["manages", "alice", "bob"]',  # a duplicate counts once
)


async def test_versions_identical_content_and_selectors(redis: aioredis.Redis, tmp_path: Path) -> None:
    s = store(redis, tmp_path)
    v1, created = await s.ingest("acme", "orgchart", ndjson(*ORG), created_by="k1", description="first")
    assert created and v1.version == 1 and v1.facts == 4
    assert {(p.name, p.arity, p.rows) for p in v1.predicates} == {("limit", 2, 2), ("manages", 2, 2)}
    assert v1.hash == canonical_hash(
        {
            ("manages", 2): [("alice", "bob"), ("bob", "carol")],
            ("limit", 2): [("alice", 10000), ("bob", 1000)],
        }
    )
    assert (tmp_path / "datasets" / "acme" / "orgchart" / "1" / "manages.parquet").is_file()
    # the same facts in another order and form: no new version
    again, created = await s.ingest("acme", "orgchart", ndjson(*reversed(ORG)), created_by="k2")
    assert not created and again.version == 1 and again.hash == v1.hash
    v2, created = await s.ingest("acme", "orgchart", ndjson(*ORG, '["limit", "carol", 5]'), created_by="k1")
    assert created and v2.version == 2
    assert (await s.resolve("acme", "orgchart")) == v2
    assert (await s.resolve("acme", "orgchart@latest")) == v2
    assert (await s.resolve("acme", "orgchart@1")) == v1
    assert (await s.resolve("acme", v1.hash)) == v1
    assert await s.resolve("globex", v1.hash) is None  # tenants are isolated
    assert await s.resolve("globex", "orgchart") is None
    assert await s.resolve("acme", "../acme/orgchart") is None
    assert [v.version for v in await s.versions("acme", "orgchart")] == [2, 1]
    assert [v.name for v in await s.names("acme")] == ["orgchart"]


async def test_tags_history_and_diff(redis: aioredis.Redis, tmp_path: Path) -> None:
    s = store(redis, tmp_path)
    v1, _ = await s.ingest("acme", "org", ndjson(*ORG), created_by="k")
    v2, _ = await s.ingest(
        "acme",
        "org",
        ndjson('["manages", "alice", "bob"]', '["manages", "bob", "dave"]', '["limit", "bob", 1000]'),
        created_by="k",
    )
    await s.tag("acme", "org", "prod", 1, by="k")
    await s.tag("acme", "org", "prod", 2, by="k2")
    assert (await s.resolve("acme", "org@prod")) is not None
    assert (await s.resolve("acme", "org@prod")).version == 2  # type: ignore[union-attr]
    assert (await s.get("acme", "org", 2)).tags == ("prod",)  # type: ignore[union-attr]
    history = await s.tag_history("acme", "org", "prod")
    assert [(m["version"], m["previous"], m["moved_by"]) for m in history] == [(2, 1, "k2"), (1, None, "k")]
    with pytest.raises(DatasetError) as missing:
        await s.tag("acme", "org", "prod", 9, by="k")
    assert missing.value.status == 404
    with pytest.raises(DatasetError):
        await s.tag("acme", "org", "latest", 1, by="k")
    diff = {d.predicate: d for d in await s.diff(v1, v2)}
    assert diff["manages"].added == 1 and diff["manages"].added_sample == (("bob", "dave"),)
    assert diff["manages"].removed == 1 and diff["manages"].removed_sample == (("bob", "carol"),)
    assert diff["limit"].added == 0 and diff["limit"].removed_sample == (("alice", 10000),)
    assert await s.diff(v2, v2) == []


async def test_page_canonical_order_and_read_checks_the_hash(redis: aioredis.Redis, tmp_path: Path) -> None:
    s = store(redis, tmp_path)
    lines = ['["p", "b"]', '["p", 10]', '["p", -3]', '["p", "a"]', '["p", ""]', '["p", 2147483647]']
    v, _ = await s.ingest("acme", "mixed", ndjson(*lines), created_by="k")
    # integers before strings, then by value
    assert await s.page(v, "p", 0, 100) == [(-3,), (10,), (2147483647,), ("",), ("a",), ("b",)]
    assert await s.page(v, "p", 2, 2) == [(2147483647,), ("",)]
    with pytest.raises(DatasetError) as absent:
        await s.page(v, "q", 0, 10)
    assert absent.value.status == 404
    read = {name: list(rows) for name, _, rows in s.read(v)}
    assert read == {"p": [(-3,), (10,), (2147483647,), ("",), ("a",), ("b",)]}
    # a file changed behind the store's back is refused, not read
    target = s.predicate_file(v, "p")
    other, _ = await s.ingest("acme", "other", ndjson('["p", 1]'), created_by="k")
    target.write_bytes(s.predicate_file(other, "p").read_bytes())
    with pytest.raises(DatasetError) as corrupt:
        list(s.read(v))
    assert corrupt.value.code == "dataset-corrupt"


async def test_base_carries_predicates_over(redis: aioredis.Redis, tmp_path: Path) -> None:
    s = store(redis, tmp_path)
    v1, _ = await s.ingest("acme", "org", ndjson(*ORG), created_by="k")
    v2, created = await s.ingest("acme", "org", ndjson('["limit", "zed", 1]'), created_by="k", base="org@1")
    assert created
    assert {p.name: p.rows for p in v2.predicates} == {"manages": 2, "limit": 1}
    assert await s.page(v2, "manages", 0, 10) == await s.page(v1, "manages", 0, 10)
    with pytest.raises(DatasetError) as bad:
        await s.ingest("acme", "org", ndjson('["x", 1]'), created_by="k", base="nothing@1")
    assert bad.value.code == "dataset-not-found"


async def test_caps(redis: aioredis.Redis, tmp_path: Path) -> None:
    s = store(redis, tmp_path, max_facts=3)
    with pytest.raises(DatasetError) as many:
        await s.ingest("acme", "d", ndjson('["p", 1]', '["p", 2]', '["p", 3]', '["p", 4]'), created_by="k")
    assert (many.value.status, many.value.code) == (413, "dataset-too-many-facts")
    s = store(redis, tmp_path, max_bytes=50)
    with pytest.raises(DatasetError) as big:
        await s.ingest("acme", "d", ndjson(*ORG), created_by="k")
    assert (big.value.status, big.value.code) == (413, "dataset-too-large")
    # the tenant's cap counts stored bytes of all its versions
    s = store(redis, tmp_path)
    first, _ = await s.ingest("acme", "d", ndjson('["p", 1]'), created_by="k")
    s = store(redis, tmp_path, tenant_max_bytes=first.bytes + 10)
    with pytest.raises(DatasetError) as full:
        await s.ingest("acme", "e", ndjson('["p", 2]'), created_by="k")
    assert (full.value.status, full.value.code) == (413, "dataset-tenant-quota")
    assert await s.resolve("acme", "e") is None
    assert not list((tmp_path / "datasets" / "acme").glob("*/.upload-*"))  # work directories removed


async def test_concurrent_uploads_get_distinct_versions(redis: aioredis.Redis, tmp_path: Path) -> None:
    s = store(redis, tmp_path)
    found = await asyncio.gather(
        *(s.ingest("acme", "race", ndjson(f'["p", {n}]'), created_by="k") for n in range(6))
    )
    assert sorted(v.version for v, _ in found) == [1, 2, 3, 4, 5, 6]
    assert (await s.resolve("acme", "race")).version == 6  # type: ignore[union-attr]


async def test_progress_and_names(redis: aioredis.Redis, tmp_path: Path) -> None:
    s = store(redis, tmp_path)
    seen = Progress()
    await s.ingest("acme", "d", ndjson(*ORG), created_by="k", progress=seen)
    assert seen.facts == 5 and seen.bytes > 100 and seen.done
    for bad in ("../x", "a/b", ".hidden", "x" * 65, "0" * 64, ""):
        with pytest.raises(DatasetError) as e:
            await s.ingest("acme", bad, ndjson(*ORG), created_by="k")
        assert e.value.code == "dataset-name"
