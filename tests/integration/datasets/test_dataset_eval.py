"""Binding and evaluating over datasets in the application layer, on the real local
store (real Redis, real Parquet files) and the real engine: publish-time binding
rules, resolution per decision, and the worker's shared model — materialised once
for concurrent first decisions, evicted by bytes, answered as the whole program."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from entail import reasoning
from entail.dataset_binding import (
    DatasetBindingError,
    bind_at_publish,
    is_pinned,
    override_bindings,
    resolve_bindings,
)
from entail.dataset_eval import evaluate_recorded, versions_of
from entail.datasets.local_store import LocalDatasetStore
from entail.datasets.port import UploadPart
from entail.models import DatasetRef, request_hash
from entail.reference_cache import ReferenceCache

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
def store(redis: aioredis.Redis, tmp_path: Path) -> LocalDatasetStore:
    return LocalDatasetStore(redis, tmp_path / "datasets")


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


async def test_concurrent_first_decisions_materialise_once_and_answer_as_the_whole_program(
    store: LocalDatasetStore,
) -> None:
    n = 60
    v, _ = await store.ingest("acme", "org", chain(n), created_by="k")
    refs = [DatasetRef(binding="org", name="org", version=v.version, hash=v.hash)]
    cache: ReferenceCache[Any] = ReferenceCache(1 << 30)
    reads = 0
    real_read = store.read

    def counting_read(version: Any) -> Any:
        nonlocal reads
        reads += 1
        return real_read(version)

    store.read = counting_read  # type: ignore[method-assign]  # count the loads, read for real
    cases = [{"ask": [[f"p{i}", f"p{i + 5}"], [f"p{i + 5}", f"p{i}"]]} for i in range(8)]
    outs = await asyncio.gather(
        *(
            evaluate_recorded(cache, store, "acme", refs, PROGRAM, "org.lp", c, ["ok(A, B)"], False, {})
            for c in cases
        )
    )
    assert reads == 1 and cache.stats().loads == 1 and cache.stats().entries == 1
    # each answer is the whole program's: the dataset as facts plus the case
    whole = reasoning.compile(PROGRAM)
    facts = "".join(f"manages(p{i},p{i + 1}).\n" for i in range(n))
    plain = reasoning.compile(facts + PROGRAM.replace("%@dataset", "% dataset"))
    for case, out in zip(cases, outs, strict=True):
        assert "error" not in out, out
        (answers,) = out["answers"]
        expected = plain.evaluate(case, ["ok(A, B)"]).answers[0].to_json()["answers"]
        assert sorted(a["atom"] for a in answers["answers"]) == sorted(a["atom"] for a in expected)
        assert len(answers["answers"]) == 1  # only the downward ask holds
    assert whole.datasets  # (the program declares its dataset)


async def test_the_cache_evicts_by_bytes_and_a_missing_version_fails_cleanly(
    store: LocalDatasetStore,
) -> None:
    small, _ = await store.ingest("acme", "a", chain(20), created_by="k")
    other, _ = await store.ingest("acme", "b", chain(22), created_by="k")
    ask = {"ask": [["p0", "p3"]]}

    def refs(v: Any) -> list[DatasetRef]:
        return [DatasetRef(binding="org", name=v.name, version=v.version, hash=v.hash)]

    sizes = []
    for v in (small, other):
        probe: ReferenceCache[Any] = ReferenceCache(1 << 30)
        await evaluate_recorded(probe, store, "acme", refs(v), PROGRAM, "o.lp", ask, ["ok(A, B)"], False, {})
        sizes.append(probe.stats().bytes)
    assert min(sizes) > 0
    cache: ReferenceCache[Any] = ReferenceCache(int(max(sizes) * 1.2))  # room for one model, not two
    for v in (small, other, small):
        out = await evaluate_recorded(
            cache, store, "acme", refs(v), PROGRAM, "o.lp", ask, ["ok(A, B)"], False, {}
        )
        assert out["answers"][0]["answers"][0]["atom"] == "ok(p0,p3)"
    stats = cache.stats()
    assert stats.loads == 3 and stats.evictions == 2 and stats.entries == 1 and stats.bytes <= cache.max_bytes

    gone = [DatasetRef(binding="org", name="a", version=small.version, hash="0" * 64)]  # not its content
    with pytest.raises(DatasetBindingError) as failed:
        await versions_of(store, "acme", gone)
    assert (failed.value.code, failed.value.status) == ("dataset-not-found", 409)


async def test_a_masked_dataset_predicate_masks_its_values_and_joins_the_case(
    store: LocalDatasetStore,
) -> None:
    v, _ = await store.ingest("acme", "org", chain(4), created_by="k")
    refs = [DatasetRef(binding="org", name="org", version=v.version, hash=v.hash)]
    cache: ReferenceCache[Any] = ReferenceCache(1 << 30)
    args = (cache, store, "acme", refs, PROGRAM, "o.lp", {"ask": [["p0", "p3"]]}, ["ok(A, B)"], True, {})
    masked = await evaluate_recorded(*args, masked=["manages/2"], mask_secret="s")
    clear = await evaluate_recorded(*args)
    atoms = [a["atom"] for a in masked["answers"][0]["answers"]]
    assert len(atoms) == 1 and "p0" not in atoms[0] and "hmac_sha256_" in atoms[0]
    assert '"p1"' not in str(masked["answers"]) and "p1" not in str(masked["answers"])
    assert clear["answers"][0]["answers"][0]["atom"] == "ok(p0,p3)"
    assert cache.stats().entries == 2  # the masked model is another entry
    assert masked["result_hash"] != clear["result_hash"]
