"""Size caps on decision records (limit-answers, limit-record-size), the tenant
checked before a record is read, and records answered without being parsed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from redis import Redis

from entail.models import DecisionRecord, RulesetRef
from entail.record_json import dump_record
from entail.record_text import head_status, public_text
from entail.state import keys
from entail.state.decisions import DecisionStore

from .stack import LocalStack, local_stack

LIMIT_ANSWERS = 1_000
RECORD_MAX_BYTES = 150_000
SOURCE = "n(X) :- a(X).\n"


def _record(tenant: str, decision_id: str, **extra: Any) -> DecisionRecord:
    return DecisionRecord(
        decision_id=decision_id,
        tenant=tenant,
        ruleset=RulesetRef(tenant=tenant, name="n", version=1, hash="0" * 64),
        request_hash="1" * 64,
        status="succeeded",
        submitted_at="2026-01-01T00:00:00.000Z",
        **extra,
    )


# the store, on real Redis -----------------------------------------------------------


async def test_another_tenants_record_is_not_read_or_parsed(redis: aioredis.Redis) -> None:
    """Before, ``get`` parsed the whole record and only then compared tenants: a big
    record of another tenant took as long to refuse as to read (a timing oracle)."""
    store = DecisionStore(redis, ttl_s=60)
    text = dump_record(_record("acme", "dec_a"))
    # a record whose body is not JSON past its head: parsing it would fail
    await redis.set(keys.decision("dec_a"), text[:200] + "<" * 100_000)
    assert await store.get("globex", "dec_a") is None
    assert await store.get_text("globex", "dec_a") is None
    assert await store.get_text("acm", "dec_a") is None  # a prefix of the tenant is another tenant
    with pytest.raises(json.JSONDecodeError):
        await store.get("acme", "dec_a")  # the owner's read does parse it
    assert await store.get("acme", "dec_missing") is None


async def test_records_are_served_as_stored(redis: aioredis.Redis) -> None:
    store = DecisionStore(redis, ttl_s=60)
    answers = [{"query": "n(X)", "answers": [{"atom": f"n({i})", "bindings": {"X": i}} for i in range(3)]}]
    record = _record("acme", "dec_b", answers=answers, facts={"a": [[0], [1], [2]]})
    await store.create(record)
    text = await store.get_text("acme", "dec_b")
    assert text is not None and head_status(text) == "succeeded"
    served = json.loads(public_text(text))
    assert "schema" not in served
    assert served == {k: v for k, v in json.loads(dump_record(record)).items() if k != "schema"}


# through the stack -----------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    env = {"ENTAIL_LIMIT_ANSWERS": str(LIMIT_ANSWERS), "ENTAIL_RECORD_MAX_BYTES": str(RECORD_MAX_BYTES)}
    with local_stack(Path(tmp_path_factory.mktemp("caps")), **env) as s:
        with s.client("acme") as acme:
            published = acme.post("/v1/rulesets", json={"name": "many", "source": SOURCE})
            assert published.status_code == 201, published.text
        yield s


def _decide(client: httpx.Client, n: int, explain: bool) -> dict[str, Any]:
    response = client.post(
        "/v1/decisions",
        json={
            "ruleset": "many",
            "facts": {"a": [[i] for i in range(n)]},
            "query": ["n(X)"],
            "explain": explain,
            "wait_ms": 20_000,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_too_many_answers_is_a_named_failure(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        body = _decide(acme, 2_000, explain=False)
        assert body["status"] == "failed" and body["answers"] is None
        assert body["error"]["code"] == "limit-answers"
        assert (
            "2000 answers" in body["error"]["message"] and "ENTAIL_LIMIT_ANSWERS" in body["error"]["message"]
        )
        assert acme.get(f"/v1/decisions/{body['decision_id']}").json()["error"]["code"] == "limit-answers"


def test_a_record_over_the_size_cap_is_a_named_failure(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        small = _decide(acme, 900, explain=False)  # 900 answers fit both caps
        assert small["status"] == "succeeded" and len(small["answers"][0]["answers"]) == 900
        big = _decide(acme, 900, explain=True)  # the same with proofs does not
        assert big["status"] == "failed" and big["answers"] is None
        assert big["error"]["code"] == "limit-record-size"
        assert big["stats"]["record_bytes"] > RECORD_MAX_BYTES
        with Redis.from_url(stack.redis_url) as r:
            for decision in (small, big):
                stored = r.get(keys.decision(decision["decision_id"]))
                assert stored is not None and len(stored) <= RECORD_MAX_BYTES


def test_another_tenants_decision_is_a_404(stack: LocalStack) -> None:
    with stack.client("acme") as acme, stack.client("globex") as globex:
        mine = _decide(acme, 10, explain=True)
        assert globex.get(f"/v1/decisions/{mine['decision_id']}").status_code == 404
        assert globex.get(f"/v1/decisions/{mine['decision_id']}/events").status_code == 404
        events = acme.get(f"/v1/decisions/{mine['decision_id']}/events")
        assert events.status_code == 200 and "event: status" in events.text
        assert json.loads(events.text.split("data: ", 1)[1].split("\n", 1)[0])["status"] == "succeeded"
