"""The cloud dataset store on the emulators (docs/datasets.md, "Storage"): a
version's Parquet objects in the bucket, its rows in the per-predicate BigQuery
tables with a ``version`` column, metadata in Redis; read() from the objects with
the hash verified; objects created once and never replaced."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from emulators.bigquery_emulator import BigQueryEmulator
from emulators.gcs_emulator import GcsEmulator

from entail.bootstrap import open_dataset_store
from entail.datasets.cloud_store import CloudDatasetStore, object_name
from entail.datasets.gcs_objects import GcsObjects
from entail.datasets.ingest import canonical_hash
from entail.datasets.port import DatasetError, DatasetVersion, Row, UploadPart, Value
from entail.reasoning.sql.dataset_tables import bigquery_table_name
from entail.settings import Settings

from .conftest import make_store

Fact = tuple[str, list[Value]]
ORG: list[Fact] = [
    ("manages", ["alice", "bob"]),
    ("manages", ["bob", "carol"]),
    ("limit", ["alice", 10000]),
    ("limit", ["bob", 1000]),
]


def ndjson(facts: list[Fact]) -> UploadPart:
    body = b"".join(orjson.dumps({"predicate": p, "args": a}) + b"\n" for p, a in facts)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 7):  # small chunks: the stream is really streamed
            yield body[i : i + 7]

    return UploadPart(format="ndjson", chunks=chunks())


def expected(facts: list[Fact]) -> dict[tuple[str, int], Sequence[Row]]:
    out: dict[tuple[str, int], list[Row]] = {}
    for predicate, args in facts:
        out.setdefault((predicate, len(args)), []).append(tuple(args))
    return dict(out)


@pytest.fixture
def tenant() -> str:
    # the emulator's bucket lives as long as the module: a tenant per test keeps
    # one test's objects out of the next one's way
    return f"t{uuid.uuid4().hex[:8]}"


def bq_rows(
    emulator: BigQueryEmulator, dataset: str, version: DatasetVersion, predicate: str, arity: int
) -> list[tuple[object, ...]]:
    """Every row of the predicate's table (all versions), in a stable order."""
    client = emulator.client()
    try:
        name = bigquery_table_name(version.tenant, version.name, predicate, arity)
        query = f"SELECT * FROM `{client.project}.{dataset}.{name}` ORDER BY version, i0, s0, i1, s1"
        return [tuple(row.values()) for row in client.query(query).result(retry=None)]
    finally:
        client.close()


async def test_a_version_is_objects_in_the_bucket_rows_in_bigquery_and_metadata_in_redis(
    store: CloudDatasetStore, gcs: GcsEmulator, emulator: BigQueryEmulator, bq_dataset: str, tenant: str
) -> None:
    version, created = await store.ingest(tenant, "org", [ndjson(ORG)], created_by="k1")
    assert created and version.version == 1 and version.facts == 4
    assert version.hash == canonical_hash(expected(ORG))  # entail.dataset.v1, as locally
    objects = gcs.objects()
    for predicate in ("limit", "manages"):
        name = f"datasets/{tenant}/org/1/{predicate}.parquet"
        assert name == object_name(version, predicate)
        # the very bytes the local store would keep
        assert objects[name] == (store.version_dir(version) / f"{predicate}.parquet").read_bytes()
    assert bq_rows(emulator, bq_dataset, version, "manages", 2) == [
        (1, None, "alice", None, "bob"),
        (1, None, "bob", None, "carol"),
    ]
    assert bq_rows(emulator, bq_dataset, version, "limit", 2) == [
        (1, None, "alice", 10000, None),
        (1, None, "bob", 1000, None),
    ]
    assert await store.resolve(tenant, "org@latest") == version


async def test_another_process_reads_the_version_from_the_bucket_with_its_hash_verified(
    store: CloudDatasetStore,
    redis: aioredis.Redis,
    tmp_path: Path,
    gcs: GcsEmulator,
    emulator: BigQueryEmulator,
    bq_dataset: str,
    tenant: str,
) -> None:
    await store.ingest(tenant, "org", [ndjson(ORG)], created_by="k1")
    # a worker: its own (empty) scratch directory, the same bucket and Redis
    worker = make_store(redis, tmp_path / "worker", gcs, emulator, bq_dataset)
    try:
        version = await worker.resolve(tenant, "org")
        assert version is not None
        read = {(p, a): list(rows) for p, a, rows in worker.read(version)}
        assert read == {  # canonical order
            ("limit", 2): [("alice", 10000), ("bob", 1000)],
            ("manages", 2): [("alice", "bob"), ("bob", "carol")],
        }
        # nothing kept behind by read(): the worker's scratch holds no copy
        assert not list((tmp_path / "worker").rglob("*.parquet"))
        # pages come from a verified local copy made once
        assert await worker.page(version, "manages", 1, 10) == [("bob", "carol")]
        assert worker.version_dir(version).is_dir()
    finally:
        worker.close()


async def test_a_changed_object_fails_the_read(
    store: CloudDatasetStore, redis: aioredis.Redis, tmp_path: Path, gcs: GcsEmulator,
    emulator: BigQueryEmulator, bq_dataset: str, tenant: str,
) -> None:  # fmt: skip
    version, _ = await store.ingest(tenant, "org", [ndjson(ORG)], created_by="k1")
    other, _ = await store.ingest(tenant, "other", [ndjson(ORG[:1])], created_by="k1")
    # someone replaces an object behind Entail's back (the emulator lets anyone)
    name = object_name(version, "manages")
    forged = gcs.objects()[object_name(other, "manages")]
    httpx.post(
        f"{gcs.endpoint}/upload/storage/v1/b/{gcs.bucket}/o",
        params={"uploadType": "media", "name": name},
        content=forged,
    ).raise_for_status()
    worker = make_store(redis, tmp_path / "worker", gcs, emulator, bq_dataset)
    try:
        with pytest.raises(DatasetError) as raised:
            list(worker.read(version))
        assert raised.value.code == "dataset-corrupt"
        with pytest.raises(DatasetError) as raised:
            await worker.page(version, "manages", 0, 10)
        assert raised.value.code == "dataset-corrupt"
        assert not worker.version_dir(version).exists()  # no unverified copy kept
    finally:
        worker.close()


async def test_identical_content_makes_no_version_no_object_and_no_rows(
    store: CloudDatasetStore, gcs: GcsEmulator, emulator: BigQueryEmulator, bq_dataset: str, tenant: str
) -> None:
    first, _ = await store.ingest(tenant, "org", [ndjson(ORG)], created_by="k1")
    again, created = await store.ingest(tenant, "org", [ndjson(list(reversed(ORG)))], created_by="k2")
    assert not created and again.version == first.version
    assert sorted(n for n in gcs.objects() if n.startswith(f"datasets/{tenant}/")) == [
        f"datasets/{tenant}/org/1/limit.parquet",
        f"datasets/{tenant}/org/1/manages.parquet",
    ]
    assert len(bq_rows(emulator, bq_dataset, first, "manages", 2)) == 2


async def test_versions_share_a_table_and_diff_and_base_work_from_the_bucket(
    store: CloudDatasetStore,
    redis: aioredis.Redis,
    tmp_path: Path,
    gcs: GcsEmulator,
    emulator: BigQueryEmulator,
    bq_dataset: str,
    tenant: str,
) -> None:
    v1, _ = await store.ingest(tenant, "org", [ndjson(ORG)], created_by="k1")
    # another backend (nothing cached) updates one predicate on top of v1
    other = make_store(redis, tmp_path / "backend-2", gcs, emulator, bq_dataset)
    try:
        v2, created = await other.ingest(
            tenant, "org", [ndjson([("manages", ["alice", "dave"])])], created_by="k1", base="org@1"
        )
        assert created and v2.version == 2
        assert {p.name: p.rows for p in v2.predicates} == {"limit": 2, "manages": 1}
        diff = {d.predicate: d for d in await other.diff(v1, v2)}
        assert set(diff) == {"manages"}
        assert (diff["manages"].added, diff["manages"].removed) == (1, 2)
        assert diff["manages"].added_sample == (("alice", "dave"),)
    finally:
        other.close()
    rows = bq_rows(emulator, bq_dataset, v2, "manages", 2)
    assert [r for r in rows if r[0] == 2] == [(2, None, "alice", None, "dave")]
    assert len([r for r in rows if r[0] == 1]) == 2  # v1's rows stay: versions are immutable
    assert len(bq_rows(emulator, bq_dataset, v2, "limit", 2)) == 4  # carried over: loaded for v2 too


async def test_an_object_in_the_way_is_never_replaced_and_the_version_not_committed(
    store: CloudDatasetStore, gcs: GcsEmulator, emulator: BigQueryEmulator, bq_dataset: str, tenant: str
) -> None:
    v1, _ = await store.ingest(tenant, "org", [ndjson(ORG)], created_by="k1")
    # an object already where version 2's would go (with other bytes)
    squatter = f"datasets/{tenant}/org/2/manages.parquet"
    httpx.post(
        f"{gcs.endpoint}/upload/storage/v1/b/{gcs.bucket}/o",
        params={"uploadType": "media", "name": squatter},
        content=b"not ours",
    ).raise_for_status()
    with pytest.raises(DatasetError) as raised:
        await store.ingest(tenant, "org", [ndjson([("manages", ["x", "y"])])], created_by="k1")
    assert raised.value.code == "dataset-storage-conflict"
    assert gcs.objects()[squatter] == b"not ours"
    assert [v.version for v in await store.versions(tenant, "org")] == [1]
    assert await store.resolve(tenant, "org@latest") == v1
    # the next upload takes the next number and succeeds
    v3, created = await store.ingest(tenant, "org", [ndjson([("manages", ["x", "y"])])], created_by="k1")
    assert created and v3.version == 3
    assert [r[0] for r in bq_rows(emulator, bq_dataset, v3, "manages", 2)] == [1, 1, 3]


async def test_a_retried_load_appends_a_versions_rows_once(
    store: CloudDatasetStore, emulator: BigQueryEmulator, bq_dataset: str, tenant: str
) -> None:
    version, _ = await store.ingest(tenant, "org", [ndjson(ORG)], created_by="k1")
    assert store.tables is not None
    # the same load again (a backend that died after loading, its upload retried)
    store.tables.load(version, store.version_dir(version))
    assert store.tables.count(version, "manages", 2) == 2
    assert len(bq_rows(emulator, bq_dataset, version, "manages", 2)) == 2


async def test_cloud_storage_down_is_a_503_and_commits_nothing(store: CloudDatasetStore, tenant: str) -> None:
    store.objects = GcsObjects("b", token=None, endpoint="http://127.0.0.1:9")  # nothing listens
    with pytest.raises(DatasetError) as raised:
        await store.ingest(tenant, "org", [ndjson(ORG)], created_by="k1")
    assert (raised.value.code, raised.value.status) == ("dataset-storage-unavailable", 503)
    assert await store.versions(tenant, "org") == []


async def test_the_composition_root_chooses_the_cloud_store(
    cloud_settings: Settings, redis: aioredis.Redis, tenant: str
) -> None:
    chosen = open_dataset_store(cloud_settings, redis)
    assert isinstance(chosen, CloudDatasetStore)
    try:
        assert chosen.tables is not None
        chosen.tables.ensure_dataset()
        version, created = await chosen.ingest(tenant, "org", [ndjson(ORG)], created_by="k1")
        assert created
        assert {p: sorted(rows) for p, _, rows in chosen.read(version)}["manages"] == [
            ("alice", "bob"),
            ("bob", "carol"),
        ]
    finally:
        chosen.close()
    with pytest.raises(ValueError, match="ENTAIL_DATASET_BUCKET"):
        Settings(dataset_store="cloud")


async def test_the_backends_copies_are_bounded_and_an_evicted_one_comes_back(
    redis: aioredis.Redis,
    tmp_path: Path,
    gcs: GcsEmulator,
    emulator: BigQueryEmulator,
    bq_dataset: str,
    tenant: str,
) -> None:
    # on Cloud Run the scratch directory is memory: only the versions used last stay
    store = make_store(redis, tmp_path / "backend", gcs, emulator, bq_dataset)
    store.cache_versions, store.cache_grace_s = 2, 0.0
    copies = tmp_path / "backend" / tenant / "org"
    try:
        made = []
        for n in range(3):
            upload = [ndjson([("manages", ["a", f"b{n}"])])]
            made.append((await store.ingest(tenant, "org", upload, created_by="k"))[0])
        assert sorted(int(p.name) for p in copies.iterdir() if p.name.isdigit()) == [2, 3]
        # the evicted version is fetched (and verified) again when a page asks
        assert await store.page(made[0], "manages", 0, 10) == [("a", "b0")]
        assert sorted(int(p.name) for p in copies.iterdir() if p.name.isdigit()) == [1, 3]
    finally:
        store.close()


async def test_a_predicate_without_rows_still_has_its_table(
    store: CloudDatasetStore, emulator: BigQueryEmulator, bq_dataset: str, tenant: str, tmp_path: Path
) -> None:
    empty_file = tmp_path / "empty.parquet"
    con = duckdb.connect()
    try:  # a Parquet part with its columns (so its arity) and no row
        con.execute(
            f"COPY (SELECT 'a'::VARCHAR AS p, 1::BIGINT AS n WHERE false) TO '{empty_file}' (FORMAT parquet)"
        )
    finally:
        con.close()

    async def body() -> AsyncIterator[bytes]:
        yield empty_file.read_bytes()

    empty = UploadPart(format="parquet", chunks=body(), predicate="limit")
    version, created = await store.ingest(tenant, "org", [ndjson(ORG[:2]), empty], created_by="k1")
    assert created and {p.name: p.rows for p in version.predicates} == {"limit": 0, "manages": 2}
    # the batch path reads every declared predicate's table, rows or not
    assert bq_rows(emulator, bq_dataset, version, "limit", 2) == []
    assert store.tables is not None and store.tables.count(version, "limit", 2) == 0
