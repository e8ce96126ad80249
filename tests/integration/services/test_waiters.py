"""Waiting clients (SSE, ``wait_ms``) share one Redis subscription per process
and are bounded: past ``ENTAIL_WAITERS_MAX`` a clear 503, never a cut stream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from entail.models import DecisionRecord, RulesetRef
from entail.state.decisions import DecisionStore
from entail.state.quotas import running_key
from entail.state.waiters import READS_AT_ONCE, DoneWaiters, TooManyWaiters, Watch

from .stack import KEYS, LocalStack, local_stack

PROBLEM = "application/problem+json"
WAITERS_MAX = 120  # more than the Redis client's default pool (100 connections)
SLOW_SOURCE = "p(X,Y) :- a(X), a(Y), X < Y.\nc(N) :- N = #count{X,Y : p(X,Y)}.\n"


# the waiters on real Redis ---------------------------------------------------------


def _pending(decision_id: str) -> DecisionRecord:
    return DecisionRecord(
        decision_id=decision_id,
        tenant="acme",
        ruleset=RulesetRef(tenant="acme", name="n", version=1, hash="0" * 64),
        request_hash="1" * 64,
        status="pending",
        submitted_at="2026-01-01T00:00:00.000Z",
    )


async def test_waiters_share_one_connection_and_are_bounded(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    waiters = DoneWaiters(store, max_waiters=60)
    try:
        ids = [f"dec_w{i}" for i in range(50)]
        for decision_id in ids:
            await store.create(_pending(decision_id))
        before = len(await redis.client_list())
        slots = [waiters.acquire() for _ in ids]
        tasks = [asyncio.create_task(waiters.wait_final("acme", d, 20)) for d in ids]
        await asyncio.sleep(1.0)  # every waiter is waiting now
        # one subscription for all of them, plus the pooled connections of their
        # short reads (at most READS_AT_ONCE at a time): not a connection each
        assert len(await redis.client_list()) - before <= 1 + READS_AT_ONCE < len(ids)
        assert not any(t.done() for t in tasks)
        for decision_id in ids:
            done = _pending(decision_id).model_copy(update={"status": "succeeded", "answers": []})
            await store.complete(done)
        texts = await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert all(text is not None and b'"status":"succeeded"' in text for text in texts)
        # another tenant waits for nothing
        assert await waiters.wait_final("globex", ids[0], 5) is None
        # the bound: 50 held + 10 more, then TooManyWaiters until one is given back
        extra = [waiters.acquire() for _ in range(10)]
        with pytest.raises(TooManyWaiters):
            waiters.acquire()
        extra[0].release()
        extra[0].release()  # twice is once
        waiters.acquire()
        with pytest.raises(TooManyWaiters):
            waiters.acquire()
        for slot in slots:
            slot.release()
        assert waiters.active == 10
    finally:
        await waiters.aclose()


class CountingReads(DecisionStore):
    """The real store, counting its record reads."""

    reads = 0

    async def get_text(self, tenant: str, decision_id: str) -> bytes | None:
        self.reads += 1
        return await super().get_text(tenant, decision_id)


async def test_a_watch_made_before_the_decision_skips_the_first_read(redis: aioredis.Redis) -> None:
    store = CountingReads(redis, ttl_s=60)
    waiters = DoneWaiters(store, max_waiters=10)
    try:
        waiters.watch("dec_warm")  # starts the subscription
        await asyncio.wait_for(waiters._subscribed.wait(), 5)
        # registered before the decision exists, as POST /v1/decisions does
        watch = waiters.watch("dec_x")
        assert watch.subscribed
        await store.create(_pending("dec_x"))
        waiting = asyncio.create_task(waiters.wait_final("acme", "dec_x", 10, watch=watch))
        await asyncio.sleep(0.3)
        assert store.reads == 0 and not waiting.done()  # nothing signalled: nothing read
        await store.complete(_pending("dec_x").model_copy(update={"status": "succeeded", "answers": []}))
        text = await asyncio.wait_for(waiting, 5)
        assert text is not None and b'"status":"succeeded"' in text
        assert store.reads == 1
        assert "dec_x" not in waiters._events  # unregistered

        # finished before the wait began: the signal set the watch's event, one read
        early = waiters.watch("dec_y")
        await store.create(_pending("dec_y"))
        await store.complete(_pending("dec_y").model_copy(update={"status": "failed"}))
        await asyncio.sleep(0.2)
        text = await asyncio.wait_for(waiters.wait_final("acme", "dec_y", 10, watch=early), 5)
        assert text is not None and b'"status":"failed"' in text
        assert store.reads == 2

        # a watch made while the subscription was down reads first, as before
        late = Watch("dec_z", asyncio.Event(), subscribed=False)
        await store.create(_pending("dec_z"))
        assert await waiters.wait_final("acme", "dec_z", 0.2, watch=late) is None
        assert store.reads >= 3
        # forgetting twice, or a watch never waited for, leaves nothing behind
        unused = waiters.watch("dec_unused")
        waiters.forget(unused)
        waiters.forget(unused)
        assert "dec_unused" not in waiters._events
    finally:
        await waiters.aclose()


# through the stack -----------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    env = {"ENTAIL_WAITERS_MAX": str(WAITERS_MAX), "ENTAIL_TENANT_MAX_RUNNING": "1"}
    with local_stack(Path(tmp_path_factory.mktemp("waiters")), **env) as s:
        with s.client("acme") as acme:
            published = acme.post("/v1/rulesets", json={"name": "slow", "source": SLOW_SOURCE})
            assert published.status_code == 201, published.text
        yield s


def _submit(client: httpx.Client, n: int, tag: str) -> str:
    body = {"ruleset": "slow", "facts": {"a": [[j] for j in range(n)] + [[tag]]}, "query": ["c(N)"]}
    response = client.post("/v1/decisions", json=body)
    assert response.status_code == 202, response.text
    decision_id: str = response.json()["decision_id"]
    return decision_id


async def _follow(
    client: httpx.AsyncClient, decision_id: str, opened: asyncio.Event, count: list[int]
) -> list[str]:
    """Read one SSE stream to its end; the event names seen."""
    names: list[str] = []
    async with client.stream("GET", f"/v1/decisions/{decision_id}/events") as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                names.append(line[7:])
                if line == "event: status":
                    count[0] += 1
                    if count[0] == WAITERS_MAX:
                        opened.set()
            elif line.startswith("data: ") and names[-1] == "done":
                assert json.loads(line[6:])["status"] == "succeeded"
    return names


def test_many_waiters_share_one_subscription_and_the_bound_is_a_503(stack: LocalStack) -> None:
    """Before, each waiter held a Redis connection of its own: past the pool's 100
    the backend failed with MaxConnectionsError and cut streams off mid-way."""
    # acme's only running slot is held here until the refusals are checked, so the
    # followed decision stays parked however fast or slow this machine is
    r = redis.Redis.from_url(stack.redis_url)
    seconds, micros = r.time()
    held = "dec_held_by_the_test"
    r.zadd(running_key("acme"), {held: seconds * 1000 + micros // 1000 + 600_000})
    with stack.client("acme") as acme:
        followed = _submit(acme, 10, "followed")  # waits parked behind the held slot

    async def scenario() -> tuple[list[list[str]], list[httpx.Response]]:
        headers = {"Authorization": f"Bearer {KEYS['acme'][0]}"}
        limits = httpx.Limits(max_connections=WAITERS_MAX + 10)
        async with httpx.AsyncClient(
            base_url=stack.url, headers=headers, timeout=60, limits=limits
        ) as client:
            opened, count = asyncio.Event(), [0]
            streams = [
                asyncio.create_task(_follow(client, followed, opened, count)) for _ in range(WAITERS_MAX)
            ]
            await asyncio.wait_for(opened.wait(), 30)
            # every slot is taken now: one more waiter of either kind is refused whole
            refused = [
                await client.get(f"/v1/decisions/{followed}/events"),
                await client.post(
                    "/v1/decisions",
                    json={"ruleset": "slow", "facts": {"a": [[1]]}, "query": ["c(N)"], "wait_ms": 5000},
                ),
            ]
            # not waiting is still served
            refused.append(await client.get(f"/v1/decisions/{followed}"))
            r.zrem(running_key("acme"), held)  # the worker's drain now publishes the parked job
            return await asyncio.gather(*streams), refused

    t0 = time.perf_counter()
    names, answers = asyncio.run(scenario())
    r.close()
    for response in answers[:2]:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        assert int(response.headers["Retry-After"]) > 0
        body: dict[str, Any] = response.json()
        assert body["type"].endswith("/too-many-waiters") and "ENTAIL_WAITERS_MAX" in body["detail"]
    assert answers[2].status_code == 200
    # every stream within the bound ran to its end
    assert all(n[0] == "status" and n[-1] == "done" for n in names), names[:3]
    assert time.perf_counter() - t0 < 120  # a deadline, not a speed claim
    log = stack.log.read_text()
    assert "MaxConnectionsError" not in log and "Too many connections" not in log
    with stack.client("acme") as acme:
        assert acme.get(f"/v1/decisions/{followed}").json()["status"] == "succeeded"
        # the slots are given back: waiting works again
        again = acme.post(
            "/v1/decisions",
            json={"ruleset": "slow", "facts": {"a": [[2]]}, "query": ["c(N)"], "wait_ms": 10_000},
        )
        assert again.status_code == 200 and again.json()["status"] == "succeeded", again.text
