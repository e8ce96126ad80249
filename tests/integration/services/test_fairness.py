"""Fairness between tenants on the worker tier: per-tenant running and open quotas
(entail.state.quotas), on real Redis and through the real local stack."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from redis import Redis
from support.waiting import wait_for

from entail.state.quotas import TenantQueueFull, TenantQuotas, open_key, parked_key, running_key

from .stack import LocalStack, local_stack

PROBLEM = "application/problem+json"
SLOW_SOURCE = "p(X,Y) :- a(X), a(Y), X < Y.\nc(N) :- N = #count{X,Y : p(X,Y)}.\n"
FAST_SOURCE = "ok(X) :- a(X).\n"


def slow_case(i: int, n: int = 300) -> dict[str, Any]:
    """About 0.4 s of evaluation on one core; ``i`` makes each case distinct (no cache hit)."""
    return {"facts": {"a": [[j] for j in range(n)] + [[f"case{i}"]]}}


# the quotas on real Redis ------------------------------------------------------


async def test_admit_is_all_or_nothing(redis: aioredis.Redis) -> None:
    quotas = TenantQuotas(redis, max_open=5, max_running=1, lease_ms=1000)
    await quotas.admit("acme", ["d1", "d2", "d3"])
    with pytest.raises(TenantQueueFull) as full:
        await quotas.admit("acme", ["d4", "d5", "d6"])
    assert full.value.free == 2 and full.value.limit == 5
    assert await quotas.open_count("acme") == 3  # nothing of the refused batch counted
    await quotas.admit("globex", ["g1", "g2", "g3", "g4", "g5"])  # another tenant's quota is its own
    await quotas.admit("acme", ["d4", "d5"])
    await quotas.withdraw("acme", ["d5"])
    assert await quotas.open_count("acme") == 4


async def test_over_the_running_quota_a_job_is_parked_then_handed_back(redis: aioredis.Redis) -> None:
    quotas = TenantQuotas(redis, max_open=100, max_running=2, lease_ms=60_000)
    assert await quotas.acquire_or_park("acme", "d1", b'{"n":1}', {"decision_id": "d1"})
    assert await quotas.acquire_or_park("acme", "d2", b'{"n":2}', {"decision_id": "d2"})
    assert not await quotas.acquire_or_park("acme", "d3", b'{"n":3}', {"decision_id": "d3"})
    assert not await quotas.acquire_or_park("acme", "d4", b'{"n":4}', {"decision_id": "d4"})
    # a redelivery of a job that holds its slot takes no second one
    assert await quotas.acquire_or_park("acme", "d1", b'{"n":1}', {"decision_id": "d1"})
    # other tenants are not affected
    assert await quotas.acquire_or_park("globex", "g1", b"{}", {})
    assert await quotas.parked_tenants() == ["acme"]
    assert await quotas.ready("acme") == []  # no free slot yet

    await quotas.release("acme", "d1")
    ready = await quotas.ready("acme")
    assert [(p.data, p.attributes["decision_id"]) for p in ready] == [(b'{"n":3}', "d3")]  # oldest first
    assert ready[0].attributes["parked"] == "1"
    # a fresh job does not overtake the parked ones, a republished one takes the slot
    assert not await quotas.acquire_or_park("acme", "d5", b'{"n":5}', {})
    assert await quotas.acquire_or_park("acme", "d3", ready[0].data, ready[0].attributes)
    await quotas.unpark("acme", ready[0])
    assert await quotas.parked_count("acme") == 2  # d4, d5
    assert await quotas.running_count("acme") == 2


async def test_a_crashed_workers_slot_frees_itself(redis: aioredis.Redis) -> None:
    quotas = TenantQuotas(redis, max_open=100, max_running=1, lease_ms=300)
    assert await quotas.acquire_or_park("acme", "d1", b"{}", {})
    assert not await quotas.acquire_or_park("acme", "d2", b'{"n":2}', {})
    await asyncio.sleep(0.2)
    assert await quotas.renew("acme", "d1")  # a live worker keeps it
    await asyncio.sleep(0.2)
    assert await quotas.ready("acme") == []
    await asyncio.sleep(0.4)  # no renewal: the lease ends
    assert [p.data for p in await quotas.ready("acme")] == [b'{"n":2}']


# through the stack ---------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    env = {"ENTAIL_TENANT_MAX_RUNNING": "1", "ENTAIL_TENANT_MAX_OPEN": "25", "ENTAIL_BATCH_MAX_CASES": "20"}
    with local_stack(Path(tmp_path_factory.mktemp("fairness")), **env) as s:
        for who, name, source in (("acme", "slow", SLOW_SOURCE), ("globex", "fast", FAST_SOURCE)):
            with s.client(who) as client:
                published = client.post("/v1/rulesets", json={"name": name, "source": source})
                assert published.status_code == 201, published.text
        yield s


def _statuses(client: httpx.Client, ids: list[str]) -> list[str]:
    statuses = []
    for i in ids:
        response = client.get(f"/v1/decisions/{i}")
        assert response.status_code == 200, response.text
        statuses.append(response.json()["status"])
    return statuses


def test_a_big_batch_does_not_hold_up_another_tenant(stack: LocalStack) -> None:
    """Before the quotas the batch's jobs took every relay slot and worker thread,
    and the other tenant's decision waited behind all of them (seconds to minutes)."""
    running_seen: list[int] = []
    stop = threading.Event()

    def watch_running() -> None:
        with Redis.from_url(stack.redis_url) as r:
            while not stop.is_set():
                running_seen.append(int(r.zcard(running_key("acme"))))
                time.sleep(0.02)

    watcher = threading.Thread(target=watch_running, daemon=True)
    watcher.start()
    try:
        with stack.client("acme") as acme, stack.client("globex") as globex:
            cases = [slow_case(i) for i in range(20)]
            batch = acme.post(
                "/v1/decisions/batch", json={"ruleset": "slow", "query": ["c(N)"], "cases": cases}
            )
            assert batch.status_code == 202, batch.text
            ids = [d["decision_id"] for d in batch.json()["decisions"]]
            with Redis.from_url(stack.redis_url) as r:
                # past the running quota the jobs were parked by the backend, not queued
                # on the bus ahead of other tenants' jobs
                assert int(r.llen(parked_key("acme"))) >= 15
            time.sleep(0.5)  # the batch's jobs reached the worker

            t0 = time.perf_counter()
            other = globex.post(
                "/v1/decisions",
                json={"ruleset": "fast", "facts": {"a": [[1], [2]]}, "query": ["ok(X)"], "wait_ms": 20_000},
            )
            latency = time.perf_counter() - t0
            assert other.status_code == 200 and other.json()["status"] == "succeeded", other.text
            assert latency < 3.0, f"the other tenant waited {latency:.2f} s"
            assert "succeeded" not in set(_statuses(acme, ids[-5:]))  # the batch is still going

            # every parked job comes back and ends: nothing is lost or dead-lettered
            # one poll is 20 GETs: once a second keeps it inside the key's rate limit
            # (50/s), which a poll every 50 ms drained, so every later poll held 429s
            wait_for(
                lambda: set(_statuses(acme, ids)) == {"succeeded"},
                timeout_s=90,
                what="the batch to finish",
                interval_s=1.0,
            )
    finally:
        stop.set()
        watcher.join()
    assert max(running_seen) == 1, "more than ENTAIL_TENANT_MAX_RUNNING of acme's jobs ran at once"
    log = stack.log.read_text()
    assert "dead-lettered" not in log


def test_open_quota_refuses_a_batch_that_does_not_fit(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        wait_for(
            lambda: Redis.from_url(stack.redis_url).zcard(open_key("acme")) == 0,
            timeout_s=60,
            what="acme's earlier decisions to end",
        )
        first = acme.post(
            "/v1/decisions/batch",
            json={"ruleset": "slow", "query": ["c(N)"], "cases": [slow_case(100 + i, 50) for i in range(20)]},
        )
        assert first.status_code in (200, 202), first.text
        with Redis.from_url(stack.redis_url) as r:
            before = int(r.zcard(open_key("acme")))
            refused = acme.post(
                "/v1/decisions/batch",
                json={
                    "ruleset": "slow",
                    "query": ["c(N)"],
                    "cases": [slow_case(200 + i, 50) for i in range(20)],
                },
            )
            assert refused.status_code == 429, refused.text
            assert refused.headers["content-type"].startswith(PROBLEM)
            assert int(refused.headers["Retry-After"]) > 0
            body = refused.json()
            assert body["type"].endswith("/tenant-queue-full") and body["limit"] == 25
            assert "20 more do not fit" in body["detail"]
            assert int(r.zcard(open_key("acme"))) <= before  # nothing of it was accepted
        # another tenant is not limited by acme's queue
        with stack.client("globex") as globex:
            ok = globex.post(
                "/v1/decisions",
                json={"ruleset": "fast", "facts": {"a": [[7]]}, "query": ["ok(X)"], "wait_ms": 10_000},
            )
            assert ok.status_code == 200, ok.text
        # once acme's decisions end, its quota is free again
        wait_for(
            lambda: Redis.from_url(stack.redis_url).zcard(open_key("acme")) == 0,
            timeout_s=60,
            what="acme's queue to drain",
        )
        again = acme.post(
            "/v1/decisions",
            json={
                "ruleset": "slow",
                "facts": slow_case(999, 20)["facts"],
                "query": ["c(N)"],
                "wait_ms": 10_000,
            },
        )
        assert again.status_code == 200, again.text
        assert json.loads(again.text)["status"] == "succeeded"
