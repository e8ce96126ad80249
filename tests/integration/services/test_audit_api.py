"""The audit trail end to end: decisions reach the DuckDB file through the bus,
the relay and the audit sink function; the backend searches, reads, replays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.waiting import wait_for

from entail.audit import DuckDBAuditStore
from entail.models import DecisionRecord

from .stack import LocalStack, decide

PROGRAM = "flag(X) :- amount(X, A), A > 100. ok(X) :- amount(X, _), not flag(X). #defined amount/2."


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    s = shared_stack.with_own_tenants("audit")
    return s


@pytest.fixture(scope="module")
def store(stack: LocalStack) -> Iterator[DuckDBAuditStore]:
    audit = DuckDBAuditStore(stack.stack.settings.data_dir / "audit.duckdb", shared=True)
    yield audit
    audit.close()


def window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}


def audited_decision(stack: LocalStack, store: DuckDBAuditStore, amount: int) -> dict[str, Any]:
    with stack.client("acme") as acme:
        assert acme.post("/v1/rulesets", json={"name": "aud", "source": PROGRAM}).status_code in (200, 201)
        body = decide(
            acme,
            ruleset="aud",
            facts={"amount": [["a", amount]]},
            query=["flag(X)", "ok(X)"],
            explain=True,
            wait_ms=10000,
        ).json()
    recorded(stack, store, body["decision_id"])
    return body


def recorded(stack: LocalStack, store: DuckDBAuditStore, decision_id: str) -> DecisionRecord:
    """The audit row the sink wrote (worker → topic decisions → relay → audit_sink)."""
    tenant = stack.tenant("acme")
    return wait_for(lambda: store.get_decision(tenant, decision_id), what=f"audit row of {decision_id}")


def test_publishing_writes_the_version_to_the_audit_store(stack: LocalStack, store: DuckDBAuditStore) -> None:
    audited_decision(stack, store, 5)
    kept = store.get_ruleset(stack.tenant("acme"), "aud", 1)
    assert kept is not None and kept.source == PROGRAM


def test_search_read_and_replay(stack: LocalStack, store: DuckDBAuditStore) -> None:
    body = audited_decision(stack, store, 500)
    with stack.client("acme_audit") as audit:
        page = audit.get("/v1/audit/decisions", params={**window(), "ruleset": "aud", "predicate": "flag/1"})
        assert page.status_code == 200, page.text
        assert body["decision_id"] in [d["decision_id"] for d in page.json()["items"]]
        one = audit.get(f"/v1/audit/decisions/{body['decision_id']}").json()
        assert one["answers"][0]["answers"][0]["proof"]["kind"] == "rule"
        replay = audit.post(f"/v1/decisions/{body['decision_id']}/replay").json()
    assert replay["identical"] is True and replay["diff"] == []
    assert replay["replay_result_hash"] == replay["original_result_hash"] == body["result_hash"]


def test_every_cache_hit_is_a_decision_with_its_own_audit_row(
    stack: LocalStack, store: DuckDBAuditStore
) -> None:
    original = audited_decision(stack, store, 321)
    with stack.client("acme") as acme:
        hits = [
            decide(
                acme,
                ruleset="aud",
                facts={"amount": [["a", 321]]},
                query=["flag(X)", "ok(X)"],
                explain=True,
                wait_ms=0,
            ).json()
            for _ in range(3)
        ]
    assert all(h["cached"] and h["cached_from"] == original["decision_id"] for h in hits)
    assert len({h["decision_id"] for h in hits} | {original["decision_id"]}) == 4
    for hit in hits:
        row = recorded(stack, store, hit["decision_id"])
        assert row.cached and row.cached_from == original["decision_id"]
        assert row.answers == original["answers"] and row.facts == original["facts"]
    with stack.client("acme_audit") as audit:
        replay = audit.post(f"/v1/decisions/{hits[0]['decision_id']}/replay").json()
    assert replay["identical"] is True
    span = window()
    page = store.search_decisions(
        stack.tenant("acme"), span["start"], span["end"], ruleset_name="aud", page_size=1000
    )
    ids = [d.decision_id for d in page.items]
    assert all(ids.count(h["decision_id"]) == 1 for h in hits)


def test_replay_reports_a_difference(stack: LocalStack, store: DuckDBAuditStore) -> None:
    body = audited_decision(stack, store, 7)
    tampered = DecisionRecord.model_validate(body).model_copy(
        update={
            "decision_id": body["decision_id"] + "x",
            "answers": [
                {"query": "flag(X)", "answers": [{"atom": 'flag("a")', "args": ["a"], "bindings": {}}]},
                {"query": "ok(X)", "answers": []},
            ],
        }
    )
    store.insert_decisions([tampered])
    with stack.client("acme_audit") as audit:
        replay = audit.post(f"/v1/decisions/{tampered.decision_id}/replay").json()
    assert replay["identical"] is False
    assert {"query": "flag(X)", "added": [], "removed": ['flag("a")']} in replay["diff"]
    assert {"query": "ok(X)", "added": ['ok("a")'], "removed": []} in replay["diff"]


def test_audit_needs_its_scope_and_a_time_range(stack: LocalStack, store: DuckDBAuditStore) -> None:
    body = audited_decision(stack, store, 9)
    with stack.client("acme") as decider:  # decide+author, not audit
        assert decider.get("/v1/audit/decisions", params=window()).status_code == 403
    with stack.client("acme_audit") as audit:
        missing = audit.get("/v1/audit/decisions", params={"start": window()["start"]})
        assert missing.status_code == 422 and "/end" in missing.json()["detail"]
        bad = audit.get("/v1/audit/decisions", params={**window(), "page_token": "nope"})
        assert bad.status_code == 422 and "page token" in bad.json()["detail"]
    with stack.client("globex") as other:
        assert other.get(f"/v1/audit/decisions/{body['decision_id']}").status_code == 404
        assert other.post(f"/v1/decisions/{body['decision_id']}/replay").status_code == 404
        page = other.get("/v1/audit/decisions", params=window()).json()
        assert all(d["tenant"] == stack.tenant("globex") for d in page["items"])


def test_pages(stack: LocalStack, store: DuckDBAuditStore) -> None:
    for amount in range(3):
        audited_decision(stack, store, 1000 + amount)
    seen: list[str] = []
    token = None
    search = {**window(), "ruleset": "aud", "page_size": 2}  # a token belongs to one search
    with stack.client("acme_audit") as audit:
        while True:
            params: dict[str, Any] = dict(search)
            if token:
                params["page_token"] = token
            response = audit.get("/v1/audit/decisions", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [d["decision_id"] for d in page["items"]]
            token = page["next_page_token"]
            if not token:
                break
    assert len(seen) == len(set(seen)) >= 3


def impact(client: Any, name: str, **body: Any) -> dict[str, Any]:
    """Start an impact job (202 + status URL) and poll it to its result."""
    started = client.post(f"/v1/rulesets/{name}/impact", json=body)
    assert started.status_code == 202, started.text
    assert started.headers["location"] == started.json()["status_url"]

    def finished() -> dict[str, Any] | None:
        job = client.get(started.json()["status_url"]).json()
        return job if job["status"] != "running" else None

    job = wait_for(finished, what="the impact job")
    assert job["status"] == "succeeded", job
    assert job["progress"]["done"] == job["progress"]["total"]
    result: dict[str, Any] = job["result"]
    return result


def test_impact_of_a_new_version(stack: LocalStack, store: DuckDBAuditStore) -> None:
    v1 = "flag(X) :- amount(X, A), A > 100. #defined amount/2."
    v2 = "flag(X) :- amount(X, A), A > 200. #defined amount/2."
    search = window()
    with stack.client("acme") as acme:
        assert acme.post("/v1/rulesets", json={"name": "imp", "source": v1}).status_code == 201
        for who, amount in (("a", 50), ("b", 150), ("c", 500)):
            body = decide(
                acme, ruleset="imp", facts={"amount": [[who, amount]]}, query=["flag(X)"], wait_ms=10000
            )
            recorded(stack, store, body.json()["decision_id"])
        assert acme.post("/v1/rulesets", json={"name": "imp", "source": v2}).json()["version"] == 2
    with stack.client("acme_audit") as audit:
        report = impact(audit, "imp", version="2", **search)
        assert (report["decisions"], report["unchanged"], report["changed"]) == (3, 2, 1), report
        change = report["changes"][0]
        assert change["version"] == 1
        assert change["old_answers"][0]["answers"][0]["atom"] == 'flag("b")'
        assert change["new_answers"][0]["answers"] == []
        assert change["rules_differ"] == ["flag(X) :- amount(X, A), A > 100."]
        limited = impact(audit, "imp", version="2", limit=2, **search)
        assert limited["truncated"] is True and limited["decisions"] == 2
        missing = audit.post("/v1/rulesets/imp/impact", json={"version": "9", **search})
        assert missing.status_code == 404


def test_masked_inputs_are_never_stored_in_clear(stack: LocalStack, store: DuckDBAuditStore) -> None:
    source = "adult(P) :- age(P, A), A >= 18, ssn(P, _). #defined age/2. #defined ssn/2."
    with stack.client("acme") as acme:
        published = acme.post(
            "/v1/rulesets", json={"name": "msk", "source": source, "masked_predicates": ["ssn/2"]}
        )
        assert published.status_code == 201 and published.json()["masked_predicates"] == ["ssn/2"]
        unmasked = acme.post("/v1/rulesets", json={"name": "msk", "source": source})
        assert unmasked.json()["version"] == 2  # another mask is another version
        facts = {"age": [["ann", 30]], "ssn": [["ann", "123-45-6789"]]}
        body = decide(acme, ruleset="msk@1", facts=facts, query=["adult(P)"], wait_ms=10000).json()
        # "ann" is a value of a masked row: masked wherever the case mentions it, so the join holds
        ann = body["facts"]["ssn"][0][0]
        assert body["answers"][0]["answers"][0]["atom"] == f'adult("{ann}")'
        assert body["masked_predicates"] == ["ssn/2"]
        assert "123-45-6789" not in json.dumps(body)
        ssn = body["facts"]["ssn"][0]
        assert all(v.startswith("hmac-sha256:") for v in ssn) and body["facts"]["age"] == [[ann, 30]]
        bad = acme.post("/v1/rulesets", json={"name": "msk", "source": source, "masked_predicates": ["ssn"]})
        assert bad.status_code == 422
    row = recorded(stack, store, body["decision_id"])
    assert "123-45-6789" not in row.model_dump_json()
    with stack.client("acme_audit") as audit:
        kept = audit.get(f"/v1/audit/decisions/{body['decision_id']}").json()
        assert "123-45-6789" not in json.dumps(kept)
        replay = audit.post(f"/v1/decisions/{body['decision_id']}/replay")
        assert replay.status_code == 409
        assert "not replayable: masked inputs" in replay.json()["detail"]
