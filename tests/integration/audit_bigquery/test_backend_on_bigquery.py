"""The backend with ``ENTAIL_AUDIT_STORE=bigquery`` on bqemulator: publishing
keeps the ruleset version in BigQuery, and the audit API searches, reads,
replays and measures the impact of a new version from BigQuery rows.

Decisions are computed as the reasoning worker computes them and written as
the audit sink writes them (``insert_decisions``); the path through Pub/Sub,
the worker and the sink function is tests/cloud/test_cloud_e2e.py's."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from emulators.bigquery_emulator import BigQueryEmulator
from entail_backend.app import create_app
from fastapi.testclient import TestClient

from entail import reasoning
from entail.audit.bigquery_store import BigQueryAuditStore
from entail.auth import key_entry
from entail.bootstrap import open_audit_store
from entail.models import DecisionRecord, RulesetRef, new_decision_id, utcnow
from entail.settings import Settings

AUTHOR, AUDITOR, STRANGER = "ent_bq_author", "ent_bq_audit", "ent_bq_globex"
V1 = "flag(X) :- amount(X, A), A > 100. ok(X) :- amount(X, _), not flag(X). #defined amount/2."
V2 = "flag(X) :- amount(X, A), A > 200. ok(X) :- amount(X, _), not flag(X). #defined amount/2."


@dataclass
class Api:
    client: TestClient
    store: BigQueryAuditStore

    def as_(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def publish(self, source: str) -> dict[str, Any]:
        response = self.client.post(
            "/v1/rulesets", json={"name": "aud", "source": source}, headers=self.as_(AUTHOR)
        )
        assert response.status_code == 201, response.text
        published: dict[str, Any] = response.json()
        return published

    def decided(self, published: dict[str, Any], source: str, amount: int, **changes: Any) -> DecisionRecord:
        """A decision as the worker makes it, stored as the sink stores it."""
        facts, query = {"amount": [["a", amount]]}, ["flag(X)", "ok(X)"]
        result = reasoning.compile(source, "aud.lp").evaluate(facts, query, explain=True)
        ref = RulesetRef(tenant="acme", name="aud", version=published["version"], hash=published["hash"])
        now = utcnow()
        record = DecisionRecord(
            decision_id=new_decision_id(),
            tenant="acme",
            ruleset=ref,
            request_hash=f"r{amount}",
            status="succeeded",
            facts=facts,
            query=query,
            explain=True,
            answers=[q.to_json() for q in result.answers],
            result_hash=result.result_hash,
            stats=dict(result.stats),
            worker="w1",
            submitted_at=now,
            started_at=now,
            completed_at=now,
        ).model_copy(update=changes)
        assert self.store.insert_decisions([record]).inserted == 1
        return record


def window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}


@pytest.fixture
def api(settings: Settings, emulator: BigQueryEmulator) -> Iterator[Api]:
    keys = [
        key_entry(AUTHOR, "bq-author", "acme", ["author", "decide"]),
        key_entry(AUDITOR, "bq-audit", "acme", ["audit"]),
        key_entry(STRANGER, "bq-globex", "globex", ["admin"]),
    ]
    configured = settings.model_copy(
        update={
            "api_keys_json": json.dumps(keys),
            "audit_store": "bigquery",
            "bigquery_project": emulator.project,
            "bigquery_endpoint": emulator.endpoint,
            "bigquery_dataset": f"backend_{uuid.uuid4().hex[:10]}",
        }
    )
    store = open_audit_store(configured)  # the choice the backend makes (the composition root)
    assert isinstance(store, BigQueryAuditStore)
    store.ensure_tables()  # Terraform's job in the cloud
    try:
        with TestClient(create_app(configured), base_url="http://127.0.0.1") as client:
            yield Api(client, store)
    finally:
        store.client.delete_dataset(
            f"{store.project}.{store.dataset}", delete_contents=True, not_found_ok=True
        )
        store.close()


def test_search_read_and_replay_from_bigquery(api: Api) -> None:
    published = api.publish(V1)
    kept = api.store.get_ruleset("acme", "aud", published["version"])
    assert kept is not None and kept.source == V1 and kept.hash == published["hash"]
    flagged, fine = api.decided(published, V1, 500), api.decided(published, V1, 5)
    audit = api.as_(AUDITOR)

    page = api.client.get("/v1/audit/decisions", params={**window(), "predicate": "flag/1"}, headers=audit)
    assert page.status_code == 200, page.text
    assert [d["decision_id"] for d in page.json()["items"]] == [flagged.decision_id]
    span, seen, token = window(), list[str](), None
    while True:
        params: dict[str, Any] = {**span, "page_size": 1} | ({"page_token": token} if token else {})
        response = api.client.get("/v1/audit/decisions", params=params, headers=audit)
        assert response.status_code == 200, response.text
        seen += [d["decision_id"] for d in response.json()["items"]]
        token = response.json()["next_page_token"]
        if token is None:
            break
    assert sorted(seen) == sorted([flagged.decision_id, fine.decision_id])
    moved = api.client.get("/v1/audit/decisions", params={**window(), "page_token": "e30"}, headers=audit)
    assert moved.status_code == 422 and "page token" in moved.json()["detail"]

    one = api.client.get(f"/v1/audit/decisions/{flagged.decision_id}", headers=audit).json()
    assert one["answers"] == flagged.answers and one["answers"][0]["answers"][0]["proof"]["kind"] == "rule"
    replay = api.client.post(f"/v1/decisions/{flagged.decision_id}/replay", headers=audit).json()
    assert replay["identical"] is True and replay["diff"] == []
    assert replay["replay_result_hash"] == replay["original_result_hash"] == flagged.result_hash

    stranger = api.as_(STRANGER)
    assert api.client.get(f"/v1/audit/decisions/{flagged.decision_id}", headers=stranger).status_code == 404
    assert api.client.post(f"/v1/decisions/{flagged.decision_id}/replay", headers=stranger).status_code == 404


def test_replay_reports_a_tampered_row(api: Api) -> None:
    published = api.publish(V1)
    tampered = api.decided(
        published,
        V1,
        7,
        answers=[
            {"query": "flag(X)", "answers": [{"atom": 'flag("a")', "args": ["a"], "bindings": {}}]},
            {"query": "ok(X)", "answers": []},
        ],
    )
    replay = api.client.post(f"/v1/decisions/{tampered.decision_id}/replay", headers=api.as_(AUDITOR)).json()
    assert replay["identical"] is False
    assert {"query": "flag(X)", "added": [], "removed": ['flag("a")']} in replay["diff"]
    assert {"query": "ok(X)", "added": ['ok("a")'], "removed": []} in replay["diff"]


def test_impact_of_a_new_version_over_bigquery_rows(api: Api) -> None:
    v1 = api.publish(V1)
    for amount in (50, 150, 500):
        api.decided(v1, V1, amount)
    assert api.publish(V2)["version"] == 2
    started = api.client.post(
        "/v1/rulesets/aud/impact", json={"version": "2", **window()}, headers=api.as_(AUDITOR)
    )
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 30
    while (job := api.client.get(started.json()["status_url"], headers=api.as_(AUDITOR)).json())[
        "status"
    ] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    report = job["result"]
    assert (report["decisions"], report["unchanged"], report["changed"]) == (3, 2, 1), report
    change = report["changes"][0]
    assert change["old_answers"][0]["answers"][0]["atom"] == 'flag("a")'
    assert change["new_answers"][0]["answers"] == []
    assert "flag(X) :- amount(X, A), A > 100." in change["rules_differ"]
