"""The backend's Redis round trips per decision request, counted on the wire through
a real uvicorn server on 127.0.0.1 (issue 15): the rate-limit token and the ruleset
version in one script on the decision routes, a cache hit's record and its audit
message in one pipeline; every other route keeps its own token, and the 429 and
the rate headers are the same on both paths."""

from __future__ import annotations

import json
from typing import Any

import httpx
from entail_worker.evaluation import Evaluations

from entail import jobs
from entail.bootstrap import bootstrap
from entail.bus.port import REASONING_JOBS
from entail.bus.redis_streams import decode_entry, stream_key
from entail.services import Services
from entail.settings import Settings
from entail.state.ratelimit import key_bucket
from entail.state.registry import name_ref

from .served import FACTS, SOURCE, CountingConnection, backend, configured


async def run_job(services: Services, settings: Settings, evaluator: Evaluations, decision_id: str) -> None:
    entries = await services.redis.xrange(stream_key(REASONING_JOBS))
    (job,) = [
        m for m in (decode_entry(i, f) for i, f in entries) if m.attributes["decision_id"] == decision_id
    ]
    assert (await jobs.handle_job(services, settings, evaluator, job)).outcome == "succeeded"


async def sent_by(call: Any) -> tuple[httpx.Response, list[str]]:
    before = len(CountingConnection.names)
    response = await call
    return response, CountingConnection.names[before:]


async def test_a_decision_takes_its_token_and_its_version_in_one_round_trip(
    settings: Settings, evaluator: Evaluations
) -> None:
    settings = configured(settings)
    async with backend(settings) as (services, http):
        v1, _ = await services.registry.publish("acme", "loan", SOURCE, "", [], "k1")
        await services.registry.publish("acme", "loan", SOURCE + "% v2\n", "", [], "k1")
        await services.registry.set_tag("acme", "loan", "prod", 1, "k1")
        body = {"ruleset": "loan@prod", "facts": FACTS, "query": ["decision(A, D)"]}
        warm = await http.post("/v1/decisions", json=body)  # loads the scripts
        assert warm.status_code == 202, warm.text
        assert (await http.get("/v1/rulesets")).status_code == 200  # and the plain take's
        await run_job(services, settings, evaluator, warm.json()["decision_id"])

        # uncached: token + version, cache lookup, submit script with the job's XADD
        # (was five, then four with the XADD on its own)
        new = {**body, "facts": {"applicant": [["bob"]], "income": [["bob", 5200000]]}}
        answer, sent = await sent_by(http.post("/v1/decisions", json=new))
        assert answer.status_code == 202, answer.text
        assert sent == ["EVALSHA", "GET", "EVAL"], sent
        assert answer.json()["ruleset"]["version"] == v1.version  # the tag's version, not the latest
        assert answer.headers["ratelimit-limit"] == str(settings.rate_limit_burst)

        # the first cache hit of the process: token + version, the cache entry and
        # the record, then the hit's record and its audit message in one pipeline
        first, sent = await sent_by(http.post("/v1/decisions", json=body))
        assert first.status_code == 200 and first.json()["cached"], first.text
        assert sent[:2] == ["EVALSHA", "GET"] and sent[-1] == "SET", sent
        await http.post("/v1/decisions", json=body)  # loads the repeat's script
        # a cache hit the process served a moment ago: the token, the version, the
        # hit's record and its audit message in one script (was four round trips,
        # then two)
        hit, sent = await sent_by(http.post("/v1/decisions", json=body))
        assert hit.status_code == 200 and hit.json()["cached"], hit.text
        assert sent == ["EVALSHA"], sent
        audited = [
            m
            for m in (decode_entry(i, f) for i, f in await services.redis.xrange(stream_key("decisions")))
            if m.attributes["decision_id"] == hit.json()["decision_id"]
        ]
        assert len(audited) == 1  # published once, with the record as answered
        assert json.loads(audited[0].data)["decision_id"] == hit.json()["decision_id"]
        for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
            assert hit.headers[name] == answer.headers[name] or name == "RateLimit-Remaining"

        # a version hash is not resolved in the script: the token, then the resolve
        by_hash, sent = await sent_by(http.post("/v1/decisions", json={**body, "ruleset": v1.hash}))
        assert by_hash.status_code == 200 and by_hash.json()["cached"], by_hash.text
        assert sent == ["EVALSHA", "HGET", "HGET", "SET"], sent

        # a name nobody published: the same one round trip, then 404
        missing, sent = await sent_by(http.post("/v1/decisions", json={**body, "ruleset": "nope"}))
        assert missing.status_code == 404, missing.text
        assert sent == ["EVALSHA"], sent

        # the batch route takes the same path
        batch = {"ruleset": "loan@prod", "cases": [{"facts": FACTS}], "query": ["decision(A, D)"]}
        done, sent = await sent_by(http.post("/v1/decisions/batch", json=batch))
        assert done.status_code == 200, done.text
        assert sent[0] == "EVALSHA" and "HGET" not in sent, sent

        # any other route takes its token alone, as before
        got, sent = await sent_by(http.get(f"/v1/decisions/{hit.json()['decision_id']}"))
        assert got.status_code == 200 and sent == ["EVALSHA", "EVALSHA"], sent
        assert got.headers["ratelimit-limit"] == str(settings.rate_limit_burst)


async def test_the_decision_routes_refuse_past_the_rate_limit_as_every_route_does(settings: Settings) -> None:
    settings = configured(settings, rate_limit_per_s=0.001, rate_limit_burst=2)
    async with backend(settings) as (services, http):
        await services.registry.publish("acme", "loan", SOURCE, "", [], "k1")
        body = {"ruleset": "loan", "facts": FACTS, "query": ["decision(A, D)"]}
        assert (await http.post("/v1/decisions", json=body)).status_code == 202
        assert (await http.get("/v1/rulesets")).status_code == 200  # the same bucket: now empty
        refused = [
            await http.post("/v1/decisions", json=body),
            await http.post("/v1/decisions", json={**body, "ruleset": "x" * 64}),  # no name ref
            await http.post("/v1/decisions", json={"ruleset": 3}),  # not even a valid body
            await http.get("/v1/rulesets"),
        ]
        problems = []
        for response in refused:
            assert response.status_code == 429, response.text
            assert response.headers["content-type"] == "application/problem+json"
            headers = {
                name: response.headers[name]
                for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After")
            }
            problem = response.json()
            problems.append((headers, problem["type"], problem["title"], problem["detail"]))
        assert all(p == problems[0] for p in problems), problems
        assert problems[0][0]["RateLimit-Limit"] == "2" and problems[0][0]["RateLimit-Remaining"] == "0"
        assert "exceeded for key 'k1'" in problems[0][3]


async def test_take_resolving_reads_every_form_of_a_name_and_nothing_when_refused(settings: Settings) -> None:
    services = await bootstrap(settings)
    try:
        v1, _ = await services.registry.publish("acme", "loan", SOURCE, "", [], "k1")
        v2, _ = await services.registry.publish("acme", "loan", SOURCE + "% v2\n", "", [], "k1")
        await services.registry.set_tag("acme", "loan", "prod", 1, "k1")
        limiter = services.rate_limiter
        bucket = key_bucket("acme", "k1")
        expected = {
            "loan": v2,
            "loan@latest": v2,
            "loan@1": v1,
            "loan@002": v2,
            "loan@prod": v1,
            "loan@3": None,
            "loan@beta": None,
            "other": None,
        }
        for ref, version in expected.items():
            named = name_ref("acme", ref)
            assert named is not None, ref
            decision, raw = await limiter.take_resolving(bucket, 1000, 100, named)
            assert decision.allowed
            assert (raw is not None) == (version is not None), ref
            # the same as the registry's own resolve
            assert await services.registry.resolve("acme", ref) == version
        # another tenant's name is that tenant's keys: nothing of acme's
        beta = name_ref("beta", "loan")
        assert beta is not None
        assert (await limiter.take_resolving(key_bucket("beta", "k"), 1000, 100, beta))[1] is None
        # not references by name: a hash, a malformed name or selector
        for ref in (v1.hash, "1loan", "loan@", "loan@Bad!", ""):
            assert name_ref("acme", ref) is None, ref
        # refused: no version read
        small = key_bucket("acme", "small")
        named = name_ref("acme", "loan")
        assert named is not None
        first, raw = await limiter.take_resolving(small, 0.001, 1, named)
        assert first.allowed and raw is not None
        second, raw = await limiter.take_resolving(small, 0.001, 1, named)
        assert not second.allowed and raw is None
        assert second.remaining == 0 and second.retry_after_s > 0
    finally:
        await services.aclose()
