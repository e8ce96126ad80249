"""A cache hit the backend served a moment ago, answered in one round trip (issue 15):
the token, the version the name resolves to now and the hit's record and audit
message in one script, through a real uvicorn on 127.0.0.1 and a real Redis. The
answer is the one the two-trip path gives; a name that moved on, a refused token,
a request the checks refuse and a retried script each do what they did before."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from entail_worker.evaluation import Evaluations
from support.replicas import primary_and_replica

from entail.bus.port import DECISIONS
from entail.bus.redis_streams import decode_entry, stream_key
from entail.services import Services
from entail.settings import Settings
from entail.state import keys as state_keys
from entail.state import ratelimit
from entail.state.ratelimit import key_bucket
from entail.state.registry import name_ref
from entail.state.stream_add import StreamAdd

from .served import FACTS, SOURCE, CountingConnection, backend, configured
from .test_decision_round_trips import run_job, sent_by

BODY: dict[str, Any] = {"ruleset": "loan", "facts": FACTS, "query": ["decision(A, D)"]}
# what differs between two answers of the same hit by nature
VARYING_HEADERS = {"date", "x-request-id", "ratelimit-remaining", "content-length"}
VARYING_FIELDS = {"decision_id", "submitted_at", "started_at", "completed_at"}


async def decided(
    services: Services, settings: Settings, evaluator: Evaluations, http: httpx.AsyncClient
) -> str:
    """Publish ``loan``, decide BODY once; returns the original decision's id."""
    await services.registry.publish("acme", "loan", SOURCE, "", [], "k1")
    first = await http.post("/v1/decisions", json=BODY)
    assert first.status_code == 202, first.text
    await run_job(services, settings, evaluator, first.json()["decision_id"])
    return str(first.json()["decision_id"])


async def audited(services: Services, decision_id: str) -> list[bytes]:
    entries = await services.redis.xrange(stream_key(DECISIONS))
    return [
        m.data for m in (decode_entry(i, f) for i, f in entries) if m.attributes["decision_id"] == decision_id
    ]


def comparable(response: httpx.Response) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = {k: v for k, v in response.headers.items() if k not in VARYING_HEADERS}
    body = {k: v for k, v in response.json().items() if k not in VARYING_FIELDS}
    return response.status_code, headers, body


async def test_a_repeated_hit_is_one_round_trip_and_answers_as_the_two_trip_path(
    settings: Settings, evaluator: Evaluations
) -> None:
    settings = configured(settings)
    async with backend(settings) as (services, http):
        original = await decided(services, settings, evaluator, http)
        # the first hit reads the cache entry and the record: the two-trip path
        first, sent = await sent_by(http.post("/v1/decisions", json=BODY))
        assert "GET" in sent and sent[-1] == "SET", sent
        await http.post("/v1/decisions", json=BODY)  # the repeat's script loaded
        hit, sent = await sent_by(http.post("/v1/decisions", json=BODY))
        assert sent == ["EVALSHA"], sent
        assert (
            hit.json()["cached_from"] == original and hit.json()["decision_id"] != first.json()["decision_id"]
        )
        assert comparable(hit) == comparable(first)
        # stored and audited once, as answered
        stored = await http.get(f"/v1/decisions/{hit.json()['decision_id']}")
        assert stored.json() == hit.json()
        (message,) = await audited(services, hit.json()["decision_id"])
        assert {k: v for k, v in json.loads(message).items() if k != "schema"} == hit.json()
        assert await services.redis.ttl(state_keys.decision(hit.json()["decision_id"])) > 0


async def test_a_name_that_names_another_version_now_is_decided_with_that_version(
    settings: Settings, evaluator: Evaluations
) -> None:
    settings = configured(settings)
    async with backend(settings) as (services, http):
        await decided(services, settings, evaluator, http)
        for _ in range(2):
            assert (await http.post("/v1/decisions", json=BODY)).json()["cached"]
        v2, _ = await services.registry.publish("acme", "loan", SOURCE + "% v2\n", "", [], "k1")
        before = await services.redis.xlen(stream_key(DECISIONS))
        moved, sent = await sent_by(http.post("/v1/decisions", json=BODY))
        # the token and the new version in the script (nothing served), then v2's
        # own decision: no second token, no hit of v1 stored or audited
        assert moved.status_code == 202, moved.text
        assert moved.json()["ruleset"]["version"] == v2.version and not moved.json()["cached"]
        assert sent.count("EVALSHA") == 1 and "SET" not in sent, sent
        assert await services.redis.xlen(stream_key(DECISIONS)) == before


async def test_a_refused_token_on_a_repeat_is_the_same_429_and_writes_nothing(
    settings: Settings, evaluator: Evaluations
) -> None:
    settings = configured(settings, rate_limit_per_s=0.001, rate_limit_burst=4)
    async with backend(settings) as (services, http):
        await decided(services, settings, evaluator, http)  # token 1
        for _ in range(3):  # tokens 2-4: the first hit, then repeats
            assert (await http.post("/v1/decisions", json=BODY)).status_code == 200
        audited_before = await services.redis.xlen(stream_key(DECISIONS))
        stored_before = len(await services.redis.keys(state_keys.decision("*")))
        refused, sent = await sent_by(http.post("/v1/decisions", json=BODY))
        assert sent == ["EVALSHA"], sent  # the repeat's script, refused
        other = await http.get("/v1/rulesets")  # any other route's 429
        for response in (refused, other):
            assert response.status_code == 429 and response.headers["retry-after"], response.text
        assert comparable(refused)[1] == comparable(other)[1]
        same = {"instance": refused.json()["instance"], "request_id": refused.json()["request_id"]}
        assert refused.json() == other.json() | same
        assert await services.redis.xlen(stream_key(DECISIONS)) == audited_before
        assert len(await services.redis.keys(state_keys.decision("*"))) == stored_before


async def test_a_repeat_the_checks_refuse_gets_the_routes_422_after_its_token(
    settings: Settings, evaluator: Evaluations
) -> None:
    settings = configured(settings)
    async with backend(settings) as (services, http):
        await decided(services, settings, evaluator, http)
        for _ in range(2):
            assert (await http.post("/v1/decisions", json=BODY)).json()["cached"]
        bad = {**BODY, "query": ["decision(A)"]}  # a known predicate with another arity
        refused, sent = await sent_by(http.post("/v1/decisions", json=bad))
        assert refused.status_code == 422 and refused.json()["type"].endswith("invalid-query"), refused.text
        assert sent == ["EVALSHA"], sent  # the usual take + resolve, nothing served


async def test_a_retried_repeat_stores_and_audits_the_hit_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The script run twice with the same arguments (a reply lost, the call retried):
    the same token outcome, the record stored once, one audit message."""
    settings = configured(settings)
    async with backend(settings) as (services, _):
        v1, _ = await services.registry.publish("acme", "loan", SOURCE, "", [], "k1")
        named = name_ref("acme", "loan")
        assert named is not None
        entry = await services.redis.hget(named.keys[1], str(v1.version))
        assert entry is not None
        limiter = services.rate_limiter
        message = StreamAdd(stream_key(DECISIONS), [("data", b"{}"), ("attributes", "{}")], 100)
        args = ("acme:k1", 1000.0, 10, named, hashlib.sha1(entry).hexdigest(), state_keys.decision("d1"))
        # the retry re-sends the first attempt's arguments, its token included
        monkeypatch.setattr(ratelimit.secrets, "token_hex", lambda _: "the-first-attempts-token")
        replies = [
            await limiter.take_resolving_serving(*args, '{"a":1}', 60, message, services.durability)
            for _ in range(2)
        ]
        assert [(r[0].allowed, r[0].remaining, r[2]) for r in replies] == [(True, 9, True)] * 2
        assert await services.redis.xlen(stream_key(DECISIONS)) == 1
        assert await services.redis.get(state_keys.decision("d1")) == b'{"a":1}'
        # another version expected: token taken, nothing written
        other = await limiter.take_resolving_serving(
            "acme:k2", 1000.0, 10, named, "0" * 40, state_keys.decision("d2"), "{}", 60, message,
            services.durability,
        )  # fmt: skip
        assert other[0].allowed and other[1] == entry and not other[2]
        assert await services.redis.exists(state_keys.decision("d2")) == 0
        assert await services.redis.xlen(stream_key(DECISIONS)) == 1
        assert key_bucket("acme", "k1")  # the bucket form the routes use


async def test_with_a_replica_the_repeat_is_one_eval_and_wait(tmp_path: Path, settings: Settings) -> None:
    """With a replica the script goes as EVAL followed by WAIT in one pipeline (a
    promoted replica has no script cache), and the hit is on the replica when answered."""
    with primary_and_replica(tmp_path) as (primary, replica):
        ha = configured(settings, redis_url=primary.url, redis_wait_replicas=1)
        worker = Evaluations(ha.model_copy(update={"worker_processes": 1}))
        worker.start_in_background()
        try:
            async with backend(ha) as (services, http):
                await decided(services, ha, worker, http)
                for _ in range(2):
                    assert (await http.post("/v1/decisions", json=BODY)).json()["cached"]
                CountingConnection.names.clear()
                hit, sent = await sent_by(http.post("/v1/decisions", json=BODY))
                assert hit.status_code == 200 and hit.json()["cached"], hit.text
                assert sent == ["EVAL"], sent  # EVAL ... WAIT: one pipeline
                with redis.Redis(port=replica.port) as r:
                    assert r.exists(state_keys.decision(hit.json()["decision_id"])) == 1
        finally:
            worker.close()
