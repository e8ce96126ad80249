"""The Python SDK (entail_client) against a real local stack: backend, worker,
relay, audit sink and Redis as processes (tests/integration/services/stack.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from entail_client import AsyncClient, Client, NotFound, Unprocessable
from support.waiting import wait_for

from ..services.stack import LocalStack
from .recording import RecordingTransport

PROGRAM = "flag(X) :- amount(X, A), A > 100.\nok(X) :- amount(X, _), not flag(X).\n#defined amount/2.\n"
STRICTER = PROGRAM.replace("A > 100", "A > 10")


@pytest.fixture(scope="module")
def entail(stack: LocalStack) -> Iterator[Client]:
    with Client(stack.url, api_key=stack.key("acme")) as client:
        client.publish("sdk", PROGRAM)
        yield client


@pytest.fixture(scope="module")
def auditor(stack: LocalStack) -> Iterator[Client]:
    with Client(stack.url, api_key=stack.key("acme_audit")) as client:
        yield client


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(hours=1)


def audited(auditor: Client, decision_ids: set[str], ruleset: str = "sdk") -> None:
    """Until the audit sink has written every one of ``decision_ids``."""

    def written() -> bool:
        seen = {
            d["decision_id"] for page in auditor.search(*window(), ruleset=ruleset) for d in page["items"]
        }
        return decision_ids <= seen

    wait_for(written, what=f"audit rows of {sorted(decision_ids)}")


@pytest.mark.parametrize("sse", [True, False], ids=["sse", "polling"])
def test_decide_waits_through_202_then_repeats_from_the_cache(
    stack: LocalStack, entail: Client, sse: bool
) -> None:
    transport = RecordingTransport()
    with Client(stack.url, api_key=stack.key("acme"), transport=transport) as recorded:
        facts = {"amount": [["a", 500], ["b", 7 if sse else 8]]}
        # wait_ms=0: the service answers 202 at once, the client follows the decision
        first = recorded.decide("sdk", facts, ["flag(X)", "ok(X)"], explain=True, wait_ms=0, sse=sse)
        assert first["status"] == "succeeded" and first.get("cached") is False
        answers = first["answers"] or []
        assert [a["atom"] for a in answers[0]["answers"]] == ['flag("a")']
        assert answers[0]["answers"][0]["proof"]["kind"] == "rule"  # explained
        again = recorded.decide("sdk", facts, ["flag(X)", "ok(X)"], explain=True)
        assert again["cached"] is True and again["cached_from"] == first["decision_id"]
        assert again["result_hash"] == first["result_hash"]
    path = f"/v1/decisions/{first['decision_id']}"
    waited = [(e.method, e.path, e.status) for e in transport.log[1:-1]]
    if sse:  # one stream to the end, no polling
        assert waited == [("GET", path + "/events", 200)]
    else:
        assert waited and all(w == ("GET", path, 200) for w in waited)
    posts = [e for e in transport.log if e.method == "POST"]
    assert [e.status for e in posts] == [202, 200]
    keys = {e.headers["idempotency-key"] for e in posts}
    assert len(keys) == 2  # one key per logical call


async def test_async_client_decides_cached_and_uncached(stack: LocalStack, entail: Client) -> None:
    async with AsyncClient(stack.url, api_key=stack.key("acme")) as client:
        facts = {"amount": [["z", 3]]}
        first = await client.decide("sdk", facts, "ok(X)", explain=True, wait_ms=0)
        assert first["status"] == "succeeded" and first.get("cached") is False
        assert [a["atom"] for a in (first["answers"] or [])[0]["answers"]] == ['ok("z")']
        polled = await client.decide("sdk", {"amount": [["y", 3]]}, "ok(X)", wait_ms=0, sse=False)
        assert polled["status"] == "succeeded"
        again = await client.decide("sdk", facts, "ok(X)", explain=True)
        assert again["cached"] is True
        batch = await client.decide_batch("sdk", [{"facts": {"amount": [["q", 1]]}}], "ok(X)", wait_ms=0)
        assert batch["done"] == batch["total"] == 1
        assert (await client.decision(first["decision_id"]))["decision_id"] == first["decision_id"]


def test_decide_batch_waits_for_every_case(entail: Client) -> None:
    cases = [{"facts": {"amount": [[f"c{i}", i * 60]]}} for i in range(4)]
    batch = entail.decide_batch("sdk", cases, ["flag(X)"], wait_ms=0)
    assert batch["done"] == batch["total"] == 4
    assert [d["status"] for d in batch["decisions"]] == ["succeeded"] * 4
    flagged = [bool((d["answers"] or [])[0]["answers"]) for d in batch["decisions"]]
    assert flagged == [False, False, True, True]  # 0, 60, 120, 180 against > 100


def test_publish_tag_and_decide_by_tag(entail: Client) -> None:
    one = entail.publish("sdk-tags", PROGRAM, description="first")
    two = entail.publish("sdk-tags", STRICTER)
    assert (one["version"], two["version"]) == (1, 2)
    assert entail.publish("sdk-tags", STRICTER)["created"] is False  # the latest again
    moved = entail.tag("sdk-tags", "prod", 1)
    assert moved["tag"] == "prod" and moved["version"] == 1
    decision = entail.decide("sdk-tags@prod", {"amount": [["t", 50]]}, "flag(X)")
    assert decision["ruleset"]["version"] == 1 and (decision["answers"] or [])[0]["answers"] == []
    entail.tag("sdk-tags", "prod", 2)
    assert entail.ruleset("sdk-tags")["tags"] == {"prod": 2}
    decision = entail.decide("sdk-tags@prod", {"amount": [["t", 50]]}, "flag(X)")
    assert decision["ruleset"]["version"] == 2 and (decision["answers"] or [])[0]["answers"]


def test_replay_and_impact(entail: Client, auditor: Client) -> None:
    entail.publish("sdk-impact", PROGRAM)
    made = [entail.decide("sdk-impact", {"amount": [[f"i{a}", a]]}, "flag(X)") for a in (5, 50, 500)]
    # replay retries the 409 (with Retry-After) of a decision not in the audit trail yet
    replay = auditor.replay(made[0]["decision_id"])
    assert replay["identical"] is True and replay["diff"] == []
    audited(auditor, {d["decision_id"] for d in made}, "sdk-impact")
    candidate = entail.publish("sdk-impact", STRICTER)
    job = auditor.impact("sdk-impact", candidate["version"], *window(), timeout=60)
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result is not None
    assert (result["decisions"], result["changed"], result["unchanged"]) == (3, 1, 2)
    assert result["changes"][0]["decision_id"] == made[1]["decision_id"]  # 50 > 10, not > 100


def test_search_follows_the_cursor_over_pages(entail: Client, auditor: Client) -> None:
    entail.publish("sdk-search", PROGRAM)
    made = {entail.decide("sdk-search", {"amount": [[f"s{i}", i]]}, "ok(X)")["decision_id"] for i in range(5)}
    audited(auditor, made, "sdk-search")
    pages = list(auditor.search(*window(), ruleset="sdk-search", page_size=2))
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert [p["next_page_token"] is None for p in pages] == [False, False, True]
    assert {d["decision_id"] for p in pages for d in p["items"]} == made
    full = auditor.audited(next(iter(made)))
    assert full["facts"] is not None


def test_problems_become_typed_exceptions_with_their_fields(entail: Client) -> None:
    with pytest.raises(Unprocessable) as caught:
        entail.publish("sdk-bad", "p(X) :- q.\n")
    error = caught.value
    assert error.status == 422 and error.slug == "invalid-program"
    assert error.type.startswith("https://") and error.title and error.detail
    diagnostic = error.extra["diagnostics"][0]
    assert diagnostic["code"] == "unsafe-variable" and (diagnostic["line"], diagnostic["column"]) == (1, 3)
    assert error.diagnostics == error.extra["diagnostics"]  # extra members read as attributes
    with pytest.raises(NotFound) as missing:
        entail.decide("no-such-ruleset", {}, "p(X)")
    assert missing.value.status == 404 and "no-such-ruleset" in missing.value.detail


def test_a_cache_hit_names_the_ruleset_it_was_asked_for(entail: Client) -> None:
    # two rulesets with one source share the cache (keyed by source hash); the
    # repeated decision must still be the second ruleset's, or searching the trail
    # by ruleset misses it
    entail.publish("sdk-twin-a", PROGRAM)
    twin = entail.publish("sdk-twin-b", PROGRAM)
    facts = {"amount": [["twin", 1]]}
    first = entail.decide("sdk-twin-a", facts, "ok(X)")
    again = entail.decide("sdk-twin-b", facts, "ok(X)")
    assert again["cached"] is True and again["cached_from"] == first["decision_id"]
    assert again["ruleset"]["name"] == "sdk-twin-b" and again["ruleset"]["version"] == twin["version"]
    assert entail.decision(again["decision_id"])["ruleset"]["name"] == "sdk-twin-b"
