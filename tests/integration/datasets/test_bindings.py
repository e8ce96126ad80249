"""Rulesets bind datasets, through the real local stack (the shared one, tenants of
this module's own): publish with pinned and floating bindings (and its 422s), a
decision recording the versions it read, a new version changing the answer (the
result cache does not serve the old one), replay with the recorded version,
impact with a new version ("same rules, new data"), the audit row keeping the
versions (entail.row.v2), the rulesets that bind a dataset, and masking of a
dataset predicate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from entail_client import Client
from support.waiting import wait_for

from entail.audit import DuckDBAuditStore
from entail.audit.row_encoding import V2, encode_row
from entail.audit.schema import decision_to_row

from ..services.stack import LocalStack, decide

NDJSON = {"Content-Type": "application/x-ndjson"}
ORG_V1 = (
    b'["manages", "alice", "bob"]\n'
    b'["manages", "bob", "carol"]\n'
    b'["limit", "alice", 10000]\n'
    b'["limit", "bob", 1000]\n'
)
ORG_V2 = ORG_V1.replace(b'["limit", "bob", 1000]', b'["limit", "bob", 100]')  # bob may approve less
EXPENSES = """\
%@dataset orgchart: manages(manager: const, employee: const), limit(person: const, amount: int).
%@input expense(id: string, employee: const, amount: int).

above(M, E) :- manages(M, E).
above(M, E) :- manages(M, X), above(X, E).
may_approve(Id, M) :- expense(Id, E, A), above(M, E), limit(M, L), A <= L.
"""
CASE = {"expense": [["e1", "carol", 500]]}
QUERY = ["may_approve(Id, M)"]


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    return shared_stack.with_own_tenants("bindings")


@pytest.fixture(scope="module")
def acme(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client("acme") as c:
        yield c


@pytest.fixture(scope="module")
def store(stack: LocalStack) -> Iterator[DuckDBAuditStore]:
    audit = DuckDBAuditStore(stack.stack.settings.data_dir / "audit.duckdb", shared=True)
    yield audit
    audit.close()


def approvers(body: dict[str, Any]) -> set[str]:
    assert body["status"] == "succeeded", body.get("error")
    return {_text(a["args"][1]) for a in body["answers"][0]["answers"]}


def _text(value: Any) -> str:
    return str(value["const"]) if isinstance(value, dict) else str(value)


def upload(acme: httpx.Client, content: bytes, **params: str) -> dict[str, Any]:
    answer = acme.post("/v1/datasets/orgchart", params=params, content=content, headers=NDJSON)
    assert answer.status_code in (200, 201), answer.text
    body: dict[str, Any] = answer.json()
    return body


def ask(acme: httpx.Client, ruleset: str, facts: dict[str, Any] = CASE, **extra: Any) -> dict[str, Any]:
    answer = decide(acme, ruleset=ruleset, facts=facts, query=QUERY, wait_ms=20000, **extra)
    assert answer.status_code in (200, 201), answer.text
    body: dict[str, Any] = answer.json()
    return body


def problem(answer: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["type"].endswith(slug), body
    return body


def test_bindings_decisions_replay_impact_audit(
    stack: LocalStack, acme: httpx.Client, store: DuckDBAuditStore
) -> None:
    start = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    v1 = upload(acme, ORG_V1, tag="prod")

    # publish: what the program does not declare, and a dataset that does not exist, are 422s
    undeclared = acme.post(
        "/v1/rulesets", json={"name": "exp", "source": EXPENSES, "datasets": {"rates": "rates@1"}}
    )
    assert problem(undeclared, 422, "dataset-not-declared")["binding"] == "rates"
    missing = acme.post(
        "/v1/rulesets", json={"name": "exp", "source": EXPENSES, "datasets": {"orgchart": "nope"}}
    )
    problem(missing, 422, "dataset-not-found")
    unknown_version = acme.post(
        "/v1/rulesets", json={"name": "exp", "source": EXPENSES, "datasets": {"orgchart": "orgchart@9"}}
    )
    problem(unknown_version, 422, "dataset-not-found")

    floating = acme.post(
        "/v1/rulesets", json={"name": "exp", "source": EXPENSES, "datasets": {"orgchart": "orgchart@prod"}}
    )
    assert floating.status_code == 201, floating.text
    assert floating.json()["datasets"] == {"orgchart": "orgchart@prod"}
    # pinned by hash: kept as name@N
    pinned = acme.post(
        "/v1/rulesets", json={"name": "exp_pinned", "source": EXPENSES, "datasets": {"orgchart": v1["hash"]}}
    )
    assert pinned.status_code == 201, pinned.text
    assert pinned.json()["datasets"] == {"orgchart": "orgchart@1"}
    # unbound: orgchart@latest
    latest = acme.post("/v1/rulesets", json={"name": "exp_latest", "source": EXPENSES})
    assert latest.json()["datasets"] == {"orgchart": "orgchart@latest"}

    # a decision records the exact version it read
    first = ask(acme, "exp")
    assert approvers(first) == {"alice", "bob"}
    ref = {"binding": "orgchart", "name": "orgchart", "version": 1, "hash": v1["hash"]}
    assert first["datasets"] == [ref]
    assert ask(acme, "exp")["cached"] is True  # same request, same versions: the cache
    # case facts may not name a dataset predicate
    sneaky = decide(acme, ruleset="exp", facts={**CASE, "limit": [["bob", 99999]]}, query=QUERY)
    assert sneaky.status_code == 422, sneaky.text

    # a new version under the tag: the same request is answered afresh, not from the cache
    v2 = upload(acme, ORG_V2, tag="prod")
    assert v2["version"] == 2
    second = ask(acme, "exp")
    assert second["cached"] is False
    assert approvers(second) == {"alice"}
    assert second["datasets"] == [{**ref, "version": 2, "hash": v2["hash"]}]
    assert second["request_hash"] != first["request_hash"]
    # the pinned version still reads version 1
    old = ask(acme, "exp_pinned")
    assert approvers(old) == {"alice", "bob"} and old["datasets"][0]["version"] == 1

    # the audit row keeps the versions, and its leaf is entail.row.v2
    tenant = stack.tenant("acme")
    row = wait_for(lambda: store.get_decision(tenant, first["decision_id"]), what="the audit row")
    assert [d.model_dump() for d in row.datasets] == [ref]
    leaf = encode_row(decision_to_row(row, inserted_at="2026-01-01T00:00:00.000Z"))
    assert leaf.startswith(V2.encode() + b"\n") and b'"datasets":[{"binding":"orgchart"' in leaf

    with stack.client("acme_audit") as audit:
        # replay evaluates with the recorded version 1, not the current 2
        def replayed() -> dict[str, Any] | None:
            answer = audit.post(f"/v1/decisions/{first['decision_id']}/replay")
            return answer.json() if answer.status_code == 200 else None

        replay = wait_for(replayed, what="the replay")
        assert replay["identical"] is True, replay
        wait_for(lambda: store.get_decision(tenant, old["decision_id"]), what="the pinned decision's row")

        # impact: same rules, new data (the pinned decisions re-run over version 2)
        end = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        started = audit.post(
            "/v1/rulesets/exp_pinned/impact",
            json={"version": "latest", "start": start, "end": end, "datasets": {"orgchart": "orgchart@2"}},
        )
        assert started.status_code == 202, started.text
        assert started.json()["candidate"]["datasets"][0]["version"] == 2

        def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = audit.get(started.json()["status_url"]).json()
            return job if job["status"] != "running" else None

        job = wait_for(finished, what="the impact job")
        assert job["status"] == "succeeded", job
        result = job["result"]
        assert (result["decisions"], result["changed"], result["failed"]) == (1, 1, 0), result
        change = result["changes"][0]
        assert {_text(a["args"][1]) for a in change["new_answers"][0]["answers"]} == {"alice"}
        # an override that names nothing is the caller's mistake
        bad = audit.post(
            "/v1/rulesets/exp_pinned/impact",
            json={"version": "latest", "start": start, "end": end, "datasets": {"orgchart": "orgchart@7"}},
        )
        problem(bad, 404, "dataset-not-found")

    # the rulesets that bind the dataset, one entry per binding
    uses = acme.get("/v1/datasets/orgchart/rulesets")
    assert uses.status_code == 200, uses.text
    found = {(u["name"], u["version"], u["selector"]) for u in uses.json()["rulesets"]}
    assert found == {
        ("exp", 1, "orgchart@prod"),
        ("exp_pinned", 1, "orgchart@1"),
        ("exp_latest", 1, "orgchart@latest"),
    }
    assert acme.get("/v1/datasets/nothing/rulesets").status_code == 404
    # the worker materialised (and kept) the reference data, and says so on /metrics
    metrics = httpx.get(f"{stack.stack.worker_url}/metrics").text
    gauges = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("entail_worker_reference_cache_")
    }
    assert gauges["entail_worker_reference_cache_loads"] >= 2, gauges  # version 1 and version 2
    assert (
        gauges["entail_worker_reference_cache_entries"] >= 1
        and gauges["entail_worker_reference_cache_bytes"] > 0
    )
    with stack.client("globex") as globex:  # another tenant sees none of it
        assert globex.get("/v1/datasets/orgchart/rulesets").status_code == 404


def test_a_masked_dataset_predicate_is_stored_as_hmacs(acme: httpx.Client) -> None:
    upload(acme, ORG_V1)
    published = acme.post(
        "/v1/rulesets",
        json={
            "name": "exp_masked",
            "source": EXPENSES,
            "datasets": {"orgchart": "orgchart@1"},
            "masked_predicates": ["manages/2"],
        },
    )
    assert published.status_code == 201, published.text
    body = ask(acme, "exp_masked", explain=True)
    names = approvers(body)
    assert len(names) == 2 and all(n.startswith("hmac_sha256_") for n in names), names
    answers = json.dumps(body["answers"])  # with their proofs
    assert "hmac_sha256_" in answers
    for clear in ("alice", "bob", "carol"):  # the org chart's names, and the case's mention of one
        assert f'"{clear}"' not in answers, clear
    # the stored case is the client's own (expense is not masked): its value as sent
    assert body["facts"] == CASE


def test_the_sdk_publishes_bindings_and_lists_the_rulesets_of_a_dataset(
    stack: LocalStack, acme: httpx.Client
) -> None:
    upload(acme, ORG_V1)
    with Client(stack.url, api_key=stack.key("acme")) as client:
        version = client.publish("exp_sdk", EXPENSES, datasets={"orgchart": "orgchart@1"})
        assert version["datasets"] == {"orgchart": "orgchart@1"}
        uses = client.dataset_rulesets("orgchart")["rulesets"]
        assert ("exp_sdk", version["version"], "orgchart", "orgchart@1") in {
            (u["name"], u["version"], u["binding"], u["selector"]) for u in uses
        }
