"""What is BigQuery's own in the audit adapter, against bqemulator 1.4.0: the
tables and their options, ``ensure_tables``, topic payloads, reads by id
bounded by the partition filter, and a record read back that replays.

The shared behaviour (idempotency, rejection, isolation, search, pages,
rulesets, expiry) is in test_store_contract.py, run on both adapters. The
emulator ignores insertIds and does not keep ``require_partition_filter`` or
column descriptions, so those are asserted on the resources we send (built
from schema.py)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from support.records import END, START
from support.records import audited as record

from entail import reasoning
from entail.audit.bigquery_store import (
    BigQueryAuditStore,
    _id_lower_bound,
    bigquery_table,
    split_insert_errors,
)
from entail.audit.schema import (
    DECISIONS_TABLE,
    RETENTION_DAYS,
    RULESETS_TABLE,
    bigquery_schema_json,
    format_timestamp,
)
from entail.models import DecisionRecord, RulesetRef, new_decision_id


def search(store: BigQueryAuditStore, tenant: str = "acme", **filters: Any) -> list[str]:
    return [
        r.decision_id for r in store.search_decisions(tenant, START, END, page_size=1000, **filters).items
    ]


def test_tables_are_created_from_the_one_schema(store: BigQueryAuditStore) -> None:
    decisions = store.client.get_table(store.table_id("decisions"), retry=None)
    assert [f.name for f in decisions.schema] == DECISIONS_TABLE.column_names
    assert [(f.field_type, f.mode) for f in decisions.schema] == [
        (c["type"], c["mode"]) for c in bigquery_schema_json("decisions")
    ]
    assert decisions.time_partitioning.type_ == "DAY"
    assert decisions.time_partitioning.field == "completed_at"
    assert decisions.time_partitioning.expiration_ms == RETENTION_DAYS * 86_400_000
    assert decisions.clustering_fields == ["tenant", "ruleset_name", "ruleset_version", "rule_ids"]
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


def test_a_topic_payload_is_validated_like_a_record(store: BigQueryAuditStore) -> None:
    r = record(2)
    assert store.insert_decisions([r.model_dump(mode="json", by_alias=True)]).inserted == 1
    assert store.get_decision("acme", r.decision_id) == r


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


def test_rows_bigquery_refuses_are_told_from_rows_it_stopped() -> None:
    """insertAll's per-row errors, in the shape BigQuery sends them (the emulator
    cannot produce them: it answers 500 for a bad value instead)."""
    errors = [
        {"index": 1, "errors": [{"reason": "invalid", "location": "answers", "message": "JSON too deep"}]},
        {"index": 0, "errors": [{"reason": "stopped", "location": "", "message": ""}]},
        {"index": 2, "errors": [{"reason": "stopped", "location": "", "message": ""}]},
    ]
    assert split_insert_errors(errors) == ({1: "BigQuery refused the row: JSON too deep (at answers)"}, False)
    backend = [{"index": 0, "errors": [{"reason": "backendError", "message": "try again"}]}]
    assert split_insert_errors(backend) == ({}, True)
    assert split_insert_errors([]) == ({}, False)
