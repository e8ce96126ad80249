"""Binding and evaluating over datasets in the application layer, on the real local
store (real Redis, real Parquet files), real compute pools and the real engine:
publish-time binding rules, resolution per decision, and the model each pool
process keeps — materialised in a pool process (not the caller's), reused there
(affinity), evicted by bytes, capped in memory, answered as the whole program."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from support.waiting import eventually

from entail import reasoning
from entail.bootstrap import DatasetReaderOpener
from entail.compute import ComputePool
from entail.dataset_binding import (
    DatasetBindingError,
    bind_at_publish,
    is_pinned,
    override_bindings,
    resolve_bindings,
)
from entail.dataset_eval import DatasetCase, ReferenceStats, evaluate_recorded, versions_of
from entail.datasets.local_store import LocalDatasetStore
from entail.datasets.port import DatasetStore, DatasetVersion, UploadPart
from entail.models import DatasetRef, request_hash
from entail.settings import Settings

PROGRAM = """\
%@dataset org: manages(manager: const, employee: const).
%@input ask(boss: const, worker: const).
above(M, E) :- manages(M, E).
above(M, E) :- manages(M, X), above(X, E).
ok(A, B) :- ask(A, B), above(A, B).
"""


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def chain(n: int) -> list[UploadPart]:
    lines = "".join(f'["manages", "p{i}", "p{i + 1}"]\n' for i in range(n))
    return [UploadPart("ndjson", _chunks(lines.encode()))]


@pytest.fixture
def store(redis: aioredis.Redis, settings: Settings) -> LocalDatasetStore:
    # where the pool processes open it (bootstrap.open_dataset_reader of the same settings)
    return LocalDatasetStore(redis, settings.data_dir / "datasets")


async def open_pool(size: int, memory_mb: int = 0) -> ComputePool:
    pool = ComputePool(size, queue_max=32, queue_max_per_tenant=32, memory_mb=memory_mb)
    await asyncio.to_thread(pool.start)
    return pool


@pytest.fixture
async def pool() -> AsyncIterator[ComputePool]:
    p = await open_pool(2)
    try:
        yield p
    finally:
        p.close()


def refs_of(v: DatasetVersion) -> tuple[DatasetRef, ...]:
    return (DatasetRef(binding="org", name=v.name, version=v.version, hash=v.hash),)


def case_of(settings: Settings, v: DatasetVersion, facts: dict[str, Any], **extra: Any) -> DatasetCase:
    fields: dict[str, Any] = {"query": ["ok(A, B)"], "explain": False, "limits": {}, **extra}
    return DatasetCase(
        reader=DatasetReaderOpener(settings),
        refs=refs_of(v),
        source=PROGRAM,
        filename="org.lp",
        facts=facts,
        **fields,
    )


async def decide(
    pool: ComputePool, store: DatasetStore, case: DatasetCase, stats: ReferenceStats | None
) -> dict[str, Any]:
    return await evaluate_recorded(pool, store, "acme", case, budget_ms=30_000, stats=stats)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_binding_at_publish_and_resolving_per_decision(store: LocalDatasetStore) -> None:
    v1, _ = await store.ingest("acme", "org", chain(3), created_by="k")
    v2, _ = await store.ingest("acme", "org", chain(4), created_by="k")
    await store.tag("acme", "org", "prod", 1, by="k")
    assert is_pinned("org@2") and is_pinned(v1.hash) and not is_pinned("org@prod") and not is_pinned("org")

    assert await bind_at_publish(store, "acme", ["org"], {}) == {"org": "org@latest"}
    assert await bind_at_publish(store, "acme", ["org"], {"org": "org"}) == {"org": "org@latest"}
    assert await bind_at_publish(store, "acme", ["org"], {"org": "org@prod"}) == {"org": "org@prod"}
    assert await bind_at_publish(store, "acme", ["org"], {"org": v1.hash}) == {"org": "org@1"}
    with pytest.raises(DatasetBindingError, match="declares no dataset 'x'") as stray:
        await bind_at_publish(store, "acme", ["org"], {"x": "org"})
    assert stray.value.code == "dataset-not-declared"
    for selector in ("org@9", "nope", "org@nosuchtag"):
        with pytest.raises(DatasetBindingError) as missing:
            await bind_at_publish(store, "acme", ["org"], {"org": selector})
        assert (missing.value.code, missing.value.status) == ("dataset-not-found", 422)
    with pytest.raises(DatasetBindingError):  # another tenant's dataset is nobody's
        await bind_at_publish(store, "globex", ["org"], {"org": "org@1"})

    floating = await resolve_bindings(store, "acme", {"org": "org@latest"})
    assert floating == [DatasetRef(binding="org", name="org", version=2, hash=v2.hash)]
    tagged = await resolve_bindings(store, "acme", {"org": "org@prod"})
    assert tagged[0].version == 1
    # the request hash covers the versions read: a new version is a new cache key
    case = ({"ask": [["p0", "p3"]]}, ["ok(A, B)"], False, {})
    assert request_hash(*case, datasets=floating) != request_hash(*case, datasets=tagged)
    assert request_hash(*case) == request_hash(*case, datasets=[])  # no datasets: the hash as before
    await store.tag("acme", "org", "prod", 2, by="k")
    assert (await resolve_bindings(store, "acme", {"org": "org@prod"}))[0].version == 2
    # impact's overrides: one binding replaced, the others as recorded
    moved = await override_bindings(store, "acme", tagged, {"org": "org@2"})
    assert moved == floating
    with pytest.raises(DatasetBindingError) as bad:
        await override_bindings(store, "acme", tagged, {"rates": "org@2"})
    assert bad.value.code == "dataset-not-declared"


async def test_decisions_run_in_a_pool_process_and_answer_as_the_whole_program(
    store: LocalDatasetStore, pool: ComputePool, settings: Settings
) -> None:
    n = 60
    v, _ = await store.ingest("acme", "org", chain(n), created_by="k")
    stats = ReferenceStats(pool.pids, 1 << 30)
    cases = [{"ask": [[f"p{i}", f"p{i + 5}"], [f"p{i + 5}", f"p{i}"]]} for i in range(8)]
    outs = await asyncio.gather(*(decide(pool, store, case_of(settings, v, c), stats) for c in cases))
    assert stats.last is not None and stats.last["pid"] in pool.pids() and stats.last["pid"] != os.getpid()
    # concurrent first decisions: at most one materialisation per process
    assert 1 <= stats.stats().loads <= pool.size
    whole = reasoning.compile(PROGRAM)
    facts = "".join(f"manages(p{i},p{i + 1}).\n" for i in range(n))
    plain = reasoning.compile(facts + PROGRAM.replace("%@dataset", "% dataset"))
    for case, out in zip(cases, outs, strict=True):
        assert "error" not in out and "reference" not in out, out
        (answers,) = out["answers"]
        expected = plain.evaluate(case, ["ok(A, B)"]).answers[0].to_json()["answers"]
        assert sorted(a["atom"] for a in answers["answers"]) == sorted(a["atom"] for a in expected)
        assert len(answers["answers"]) == 1  # only the downward ask holds
    assert whole.datasets  # (the program declares its dataset)


async def test_the_materialisation_takes_a_pool_processs_cpu_not_the_callers(
    store: LocalDatasetStore, pool: ComputePool, settings: Settings
) -> None:
    """On a thread of the caller (before), the caller's process spent the whole
    materialisation's CPU, holding the interpreter lock against its event loop."""
    v, _ = await store.ingest("acme", "org", chain(1000), created_by="k")  # 500k `above` facts
    stats = ReferenceStats(pool.pids, 1 << 30)
    children = {pid: cpu_s(pid) for pid in pool.pids()}
    mine = time.process_time()
    out = await decide(pool, store, case_of(settings, v, {"ask": [["p0", "p9"]]}), stats)
    mine = time.process_time() - mine
    assert "error" not in out, out
    assert stats.last is not None and stats.last["materialised"]
    theirs = cpu_s(stats.last["pid"]) - children[stats.last["pid"]]
    assert theirs > 0.2, theirs  # the materialisation is real work...
    assert mine < 0.25 * theirs, (mine, theirs)  # ...done elsewhere


async def test_a_version_is_served_by_the_process_that_materialised_it(
    store: LocalDatasetStore, pool: ComputePool, settings: Settings
) -> None:
    """Affinity: each round, the dataset decision is dispatched first and a plain
    task (which takes longer) second; without affinity the decision would take the
    process the plain task left last, the other one every round, and materialise
    the version again there."""
    v, _ = await store.ingest("acme", "org", chain(30), created_by="k")
    stats = ReferenceStats(pool.pids, 1 << 30)
    pids = []
    for i in range(4):
        decided = asyncio.create_task(
            decide(pool, store, case_of(settings, v, {"ask": [["p0", f"p{i + 1}"]]}), stats)
        )
        await eventually(
            lambda d=decided: pool.stats()["running"] == 1 or d.done(),  # type: ignore[misc]
            what="the decision running",
        )
        out, _ = await asyncio.gather(decided, pool.run(time.sleep, 0.1, budget_ms=5_000))
        assert out["answers"][0]["answers"][0]["atom"] == f"ok(p0,p{i + 1})"
        assert stats.last is not None
        pids.append(stats.last["pid"])
    assert len(set(pids)) == 1, pids
    assert stats.stats().loads == 1 and stats.stats().hits == 3
    assert pool.holders(case_of(settings, v, {}).affinity) == pids[:1]


async def test_the_cache_evicts_by_bytes_and_a_missing_version_fails_cleanly(
    store: LocalDatasetStore, settings: Settings
) -> None:
    small, _ = await store.ingest("acme", "a", chain(20), created_by="k")
    other, _ = await store.ingest("acme", "b", chain(22), created_by="k")
    ask = {"ask": [["p0", "p3"]]}
    probe = await open_pool(1)  # one process: every model lands in the same cache
    try:
        stats = ReferenceStats(probe.pids, 1 << 30)
        sizes: list[int] = []
        for v in (small, other):
            await decide(probe, store, case_of(settings, v, ask), stats)
            sizes.append(stats.stats().bytes - sum(sizes))
    finally:
        probe.close()
    assert min(sizes) > 0
    budget = int(max(sizes) * 1.2)  # room for one model, not two
    pool = await open_pool(1)
    try:
        stats = ReferenceStats(pool.pids, budget)
        for v in (small, other, small):
            out = await decide(pool, store, case_of(settings, v, ask, cache_bytes=budget), stats)
            assert out["answers"][0]["answers"][0]["atom"] == "ok(p0,p3)"
        kept = stats.stats()
        assert (kept.loads, kept.evictions, kept.entries) == (3, 2, 1) and kept.bytes <= budget
    finally:
        pool.close()

    gone = [DatasetRef(binding="org", name="a", version=small.version, hash="0" * 64)]  # not its content
    with pytest.raises(DatasetBindingError) as failed:
        await versions_of(store, "acme", gone)
    assert (failed.value.code, failed.value.status) == ("dataset-not-found", 409)


async def test_a_masked_dataset_predicate_masks_its_values_and_joins_the_case(
    store: LocalDatasetStore, pool: ComputePool, settings: Settings
) -> None:
    v, _ = await store.ingest("acme", "org", chain(4), created_by="k")
    stats = ReferenceStats(pool.pids, 1 << 30)
    ask = {"ask": [["p0", "p3"]]}
    masked = await decide(
        pool, store, case_of(settings, v, ask, explain=True, masked=("manages/2",), mask_secret="s"), stats
    )
    assert stats.last is not None and stats.last["materialised"]
    clear = await decide(pool, store, case_of(settings, v, ask, explain=True), stats)
    assert stats.last["materialised"]  # the masked model is another entry
    atoms = [a["atom"] for a in masked["answers"][0]["answers"]]
    assert len(atoms) == 1 and "p0" not in atoms[0] and "hmac_sha256_" in atoms[0]
    assert '"p1"' not in str(masked["answers"]) and "p1" not in str(masked["answers"])
    assert clear["answers"][0]["answers"][0]["atom"] == "ok(p0,p3)"
    assert masked["result_hash"] != clear["result_hash"]
