"""The BigQuery audit adapter against bqemulator 1.4.0: tables and their options,
idempotent inserts, rejections, search, reads, rulesets, expiry and replay.

The emulator ignores insertIds and does not keep ``require_partition_filter``
or column descriptions, so those are asserted on the resources we send (built
from schema.py), and idempotency is asserted through our own de-duplication."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

from entail import reasoning
from entail.audit.bigquery_store import BigQueryAuditStore, _id_lower_bound, bigquery_table
from entail.audit.port import AuditStore
from entail.audit.schema import (
    DECISIONS_TABLE,
    RETENTION_DAYS,
    RULESETS_TABLE,
    RulesetRecord,
    bigquery_schema_json,
    format_timestamp,
)
from entail.models import DecisionRecord, RulesetRef, new_decision_id

T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
DAY = (T0 - timedelta(days=1), T0 + timedelta(days=1))


def record(
    n: int,
    *,
    tenant: str = "acme",
    ruleset: str = "loan",
    version: int = 1,
    status: str = "succeeded",
    completed: datetime | None = None,
    atoms: list[tuple[str, list[Any]]] | None = None,
    **extra: Any,
) -> DecisionRecord:
    done = completed or T0 + timedelta(seconds=n)
    answers = [
        {
            "query": "q",
            "answers": [
                {"atom": f"{name}({', '.join(map(str, a))})" if a else name, "args": a, "bindings": {}}
                for name, a in (atoms if atoms is not None else [("decision", ["alice", "approve"])])
            ],
        }
    ]
    return DecisionRecord.model_validate(
        {
            "decision_id": f"dec_{n:06d}",
            "tenant": tenant,
            "ruleset": {"tenant": tenant, "name": ruleset, "version": version, "hash": "h" * 64},
            "request_hash": f"r{n}",
            "status": status,
            "facts": {"applicant": [["alice", 30]]},
            "query": ["decision(A, D)"],
            "answers": answers,
            "result_hash": "x" * 64,
            "stats": {"rules": 3},
            "worker": "w1",
            "submitted_at": format_timestamp(done - timedelta(seconds=2)),
            "completed_at": format_timestamp(done),
            **extra,
        }
    )


def search(store: BigQueryAuditStore, tenant: str = "acme", **filters: Any) -> list[str]:
    return [r.decision_id for r in store.search_decisions(tenant, *DAY, page_size=1000, **filters).items]


def test_the_store_satisfies_the_port(store: BigQueryAuditStore) -> None:
    assert isinstance(store, AuditStore)


def test_tables_are_created_from_the_one_schema(store: BigQueryAuditStore) -> None:
    decisions = store.client.get_table(store.table_id("decisions"), retry=None)
    assert [f.name for f in decisions.schema] == DECISIONS_TABLE.column_names
    assert [(f.field_type, f.mode) for f in decisions.schema] == [
        (c["type"], c["mode"]) for c in bigquery_schema_json("decisions")
    ]
    assert decisions.time_partitioning.type_ == "DAY"
    assert decisions.time_partitioning.field == "completed_at"
    assert decisions.time_partitioning.expiration_ms == RETENTION_DAYS * 86_400_000
    assert decisions.clustering_fields == ["tenant", "ruleset_name"]
    rulesets = store.client.get_table(store.table_id("rulesets"), retry=None)
    assert rulesets.time_partitioning is None  # never expires
    assert rulesets.clustering_fields == ["tenant", "name"]


def test_what_the_emulator_does_not_keep_is_in_what_we_send() -> None:
    sent = bigquery_table("p", "d", DECISIONS_TABLE)
    assert sent.require_partition_filter is True
    assert [f.description for f in sent.schema] == [c.description for c in DECISIONS_TABLE.columns]
    assert sent.description == DECISIONS_TABLE.description
    assert bigquery_table("p", "d", RULESETS_TABLE).require_partition_filter is None


def test_ensure_tables_twice_is_harmless(store: BigQueryAuditStore) -> None:
    store.insert_decisions([record(1)])
    store.ensure_tables()
    assert search(store) == ["dec_000001"]


def test_insert_and_read_back(store: BigQueryAuditStore) -> None:
    r = record(1, explain=True, cached=True, cached_from="dec_000000", masked_predicates=["income/3"])
    assert store.insert_decisions([r]).inserted == 1
    got = store.get_decision("acme", r.decision_id)
    assert got == r


def test_a_topic_payload_is_validated_like_a_record(store: BigQueryAuditStore) -> None:
    r = record(2)
    assert store.insert_decisions([r.model_dump(mode="json", by_alias=True)]).inserted == 1
    assert store.get_decision("acme", r.decision_id) == r


def test_inserts_are_idempotent_on_decision_id(store: BigQueryAuditStore) -> None:
    first = store.insert_decisions([record(1), record(2), record(1)])
    assert (first.inserted, first.duplicates) == (2, 1)
    # a redelivery later: the emulator, unlike BigQuery, ignores insertIds, so
    # this is our own de-duplication at work
    again = store.insert_decisions([record(2), record(3)])
    assert (again.inserted, again.duplicates) == (1, 1)
    assert sorted(search(store)) == ["dec_000001", "dec_000002", "dec_000003"]


def test_rows_that_can_never_be_stored_are_rejected_with_the_reason(store: BigQueryAuditStore) -> None:
    running = record(4).model_dump(mode="json", by_alias=True) | {"status": "running", "completed_at": None}
    result = store.insert_decisions([record(5), running, {"decision_id": "dec_bad", "tenant": "acme"}])
    assert result.inserted == 1
    assert sorted(r.decision_id or "" for r in result.rejected) == ["dec_000004", "dec_bad"]
    assert all(r.reason for r in result.rejected)
    kept = store.rejected()
    assert sorted(r.decision_id or "" for r in kept) == ["dec_000004", "dec_bad"]
    assert {r.payload["decision_id"] for r in kept} == {"dec_000004", "dec_bad"}


def test_an_id_taken_by_another_tenant_is_rejected(store: BigQueryAuditStore) -> None:
    store.insert_decisions([record(6, tenant="other")])
    result = store.insert_decisions([record(6)])
    assert result.inserted == 0 and result.rejected[0].reason.endswith("another tenant")
    assert store.get_decision("acme", "dec_000006") is None
    assert store.get_decision("other", "dec_000006") is not None


def test_reads_are_tenant_isolated(store: BigQueryAuditStore) -> None:
    store.insert_decisions([record(1), record(2, tenant="other")])
    assert search(store) == ["dec_000001"]
    assert search(store, "other") == ["dec_000002"]
    assert store.get_decision("other", "dec_000001") is None


def test_search_filters_and_order(store: BigQueryAuditStore) -> None:
    store.insert_decisions(
        [
            record(1, ruleset="loan", version=1),
            record(2, ruleset="loan", version=2),
            record(3, ruleset="kyc", status="failed", answers=None),
            record(4, atoms=[("flag", ["a"]), ("ok", [])]),
            record(5, completed=T0 + timedelta(days=3)),  # outside the window
        ]
    )
    assert search(store) == ["dec_000004", "dec_000003", "dec_000002", "dec_000001"]
    assert search(store, ruleset_name="loan") == ["dec_000004", "dec_000002", "dec_000001"]
    assert search(store, ruleset_name="loan", ruleset_version=2) == ["dec_000002"]
    assert search(store, status="failed") == ["dec_000003"]
    assert search(store, predicate="flag/1") == ["dec_000004"]
    assert search(store, predicate="ok/0") == ["dec_000004"]
    assert search(store, predicate="decision/2") == ["dec_000002", "dec_000001"]
    assert search(store, predicate="decision/3") == []


def test_pages_cover_everything_once(store: BigQueryAuditStore) -> None:
    same = T0 + timedelta(minutes=5)  # ties on completed_at are ordered by decision_id
    store.insert_decisions([record(n, completed=same if n % 3 == 0 else None) for n in range(1, 24)])
    seen: list[str] = []
    token: str | None = None
    while True:
        page = store.search_decisions("acme", *DAY, page_size=5, page_token=token)
        seen.extend(r.decision_id for r in page.items)
        token = page.next_page_token
        if token is None:
            break
    assert sorted(seen) == sorted(f"dec_{n:06d}" for n in range(1, 24)) and len(seen) == 23
    token = store.search_decisions("acme", *DAY, page_size=1).next_page_token
    assert token is not None
    with pytest.raises(ValueError, match="page"):  # a token is bound to its search
        store.search_decisions("acme", *DAY, page_size=1, status="failed", page_token=token)


def test_rulesets_are_kept_once(store: BigQueryAuditStore) -> None:
    kept = RulesetRecord(
        tenant="acme",
        name="loan",
        version=3,
        hash="a" * 64,
        source="p(1).",
        description="d",
        tests=[{"name": "t", "facts": {}, "query": ["p(X)"], "expect": {"p(X)": ["p(1)"]}}],
        published_at=format_timestamp(T0),
        published_by="key_1",
    )
    assert store.put_ruleset(kept) is True
    assert store.put_ruleset(kept) is False
    assert store.get_ruleset("acme", "loan", 3) == kept
    assert store.get_ruleset("other", "loan", 3) is None


def test_expire_deletes_what_is_older_than_seven_years(store: BigQueryAuditStore) -> None:
    store.insert_decisions([record(1), record(2, completed=T0 - timedelta(days=RETENTION_DAYS + 1))])
    assert store.expire(T0) == 1
    long_ago = T0 - timedelta(days=RETENTION_DAYS + 10)
    everything = store.search_decisions("acme", long_ago, T0 + timedelta(days=1))
    assert [r.decision_id for r in everything.items] == ["dec_000001"]


def test_reads_by_id_are_bounded_by_the_time_in_the_id() -> None:
    real = new_decision_id()
    bound = _id_lower_bound([real])
    assert datetime.now(UTC) - timedelta(days=1, minutes=1) < bound < datetime.now(UTC) - timedelta(hours=23)
    assert _id_lower_bound(["dec_000001"]).year == 1970  # not one of ours: no bound
    assert _id_lower_bound([real, "imported-7"]).year == 1970


def test_a_decision_read_back_replays_identically(store: BigQueryAuditStore) -> None:
    """What replay needs from the store: the facts, query and answers exactly as
    decided, so re-evaluating against the stored ruleset gives the same result."""
    source = (resources.files("entail.examples") / "loan" / "program.lp").read_text()
    facts = {
        "applicant": [["ann"]],
        "income": [["ann", 5_000_000, "salary"]],
        "employment": [["ann", 36]],
        "requested": [["ann", 10_000_000]],
    }
    ruleset = reasoning.compile(source, "loan")
    result = ruleset.evaluate(facts, ["decision(A, D)"], explain=True)
    now = format_timestamp(datetime.now(UTC))
    decided = DecisionRecord(
        decision_id=new_decision_id(),
        tenant="acme",
        ruleset=RulesetRef(
            tenant="acme", name="loan", version=1, hash=hashlib.sha256(source.encode()).hexdigest()
        ),
        request_hash="r",
        status="succeeded",
        facts=facts,
        query=["decision(A, D)"],
        explain=True,
        answers=[q.to_json() for q in result.answers],
        result_hash=result.result_hash,
        stats=dict(result.stats),
        submitted_at=now,
        started_at=now,
        completed_at=now,
    )
    store.insert_decisions([decided])
    stored = store.get_decision("acme", decided.decision_id)
    assert stored is not None and stored.answers == decided.answers
    assert stored.facts is not None
    again = reasoning.compile(source, "loan").evaluate(stored.facts, stored.query, explain=stored.explain)
    assert again.result_hash == stored.result_hash
    assert [q.to_json() for q in again.answers] == stored.answers
