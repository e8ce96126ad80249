"""The audit-store contract (``entail.audit.port``), run against both adapters:
the local DuckDB store and the BigQuery store on bqemulator.

Each test runs once per adapter with the same inputs and the same expected
outputs, so a behaviour that drifts in one adapter fails here; the last test
feeds one batch to both at once and compares everything they answer, page
tokens included (a token from one adapter is valid on the other). The DuckDB
specifics (files, locking, threads) stay in tests/unit/audit; the BigQuery
specifics (table options, partition filters) in
tests/integration/audit_bigquery."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from support.records import END, START, T0
from support.records import audited as record

from entail.audit import DuckDBAuditStore
from entail.audit.bigquery_store import BigQueryAuditStore
from entail.audit.port import ANOTHER_TENANT, AuditStore, SearchPage
from entail.audit.schema import RETENTION_DAYS, format_timestamp
from entail.models import RulesetRecord

Store = DuckDBAuditStore | BigQueryAuditStore


@pytest.fixture(params=["duckdb", "bigquery"])
def audit(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "bigquery":
        yield request.getfixturevalue("bigquery_store")  # tests/integration/conftest.py: a fresh dataset
        return
    local = DuckDBAuditStore()
    yield local
    local.close()


def ids(page: SearchPage) -> list[str]:
    return [r.decision_id for r in page.items]


def find(store: Store, tenant: str = "acme", **filters: Any) -> list[str]:
    return ids(store.search_decisions(tenant, START, END, page_size=1000, **filters))


def all_pages(store: Store, page_size: int, **filters: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        page = store.search_decisions("acme", START, END, page_size=page_size, page_token=token, **filters)
        pages.append(ids(page))
        token = page.next_page_token
        if token is None:
            return pages


# --- writes ------------------------------------------------------------------------


def test_both_satisfy_the_port(audit: Store) -> None:
    assert isinstance(audit, AuditStore)


def test_a_record_comes_back_exactly(audit: Store) -> None:
    """JSON columns keep what JSON can say: unicode, quotes, int64 extremes,
    nesting, empty values; the failure record keeps its error."""
    facts = {
        "person": [['Zoë "the" O\'Brien ✓', 9_223_372_036_854_775_807], ["", -9_223_372_036_854_775_808]],
        "empty": [],
    }
    proof = {
        "kind": "rule",
        "rule": "p(X) :- q(X).",
        "line": 3,
        "children": [{"kind": "input", "atom": "q(1)"}],
    }
    full = record(
        1,
        facts=facts,
        explain=True,
        answers=[
            {
                "query": "p(X)",
                "answers": [{"atom": "p(1)", "args": [1], "bindings": {"X": 1}, "proof": proof}],
            }
        ],
        cached=True,
        cached_from="dec_000000",
        masked_predicates=["income/3"],
        started_at=None,
    )
    failed = record(
        2,
        status="failed",
        answers=None,
        result_hash=None,
        error={"code": "limit_exceeded", "message": "too many facts", "diagnostics": [{"line": 1}]},
        facts={},
    )
    assert audit.insert_decisions([full, failed]).inserted == 2
    assert audit.get_decision("acme", "dec_000001") == full
    assert audit.get_decision("acme", "dec_000002") == failed


def test_each_decision_is_stored_once(audit: Store) -> None:
    first = audit.insert_decisions([record(1), record(2), record(1)])
    assert (first.inserted, first.duplicates, first.rejected) == (2, 1, [])
    redelivered = audit.insert_decisions([record(2), record(3), record(3), record(1)])
    assert (redelivered.inserted, redelivered.duplicates) == (1, 3)
    assert find(audit) == ["dec_000003", "dec_000002", "dec_000001"]
    assert audit.insert_decisions([]).inserted == 0


def test_rows_that_can_never_be_stored_are_rejected_alike(audit: Store) -> None:
    running = record(2).model_dump(mode="json", by_alias=True) | {"status": "running"}
    no_completion = record(3).model_copy(update={"completed_at": None})
    garbage = {"decision_id": "dec_bad", "tenant": "acme", "status": "succeeded"}
    bad_time = record(4).model_copy(update={"completed_at": "yesterday"})
    batch: list[Any] = [record(1), running, no_completion, garbage, bad_time, "not even a dict"]
    result = audit.insert_decisions(batch)
    assert result.inserted == 1
    reasons = {r.decision_id: r.reason for r in result.rejected}
    assert "not final" in reasons["dec_000002"]
    assert "completed_at is missing" in reasons["dec_000003"]
    assert reasons["dec_bad"].startswith("not a valid decision record") and "ruleset" in reasons["dec_bad"]
    assert "invalid timestamp 'yesterday'" in reasons["dec_000004"]
    assert reasons[None].startswith("not a valid decision record")
    kept = {r.decision_id: r for r in audit.rejected()}
    assert set(kept) == {"dec_000002", "dec_000003", "dec_000004", "dec_bad", None}
    assert kept["dec_bad"].payload == garbage and kept[None].payload == "not even a dict"
    assert kept["dec_000002"].tenant == "acme" and kept["dec_000002"].payload["status"] == "running"
    assert find(audit) == ["dec_000001"]


def test_an_id_another_tenant_holds_is_rejected(audit: Store) -> None:
    audit.insert_decisions([record(1, tenant="globex")])
    result = audit.insert_decisions([record(1)])
    assert (result.inserted, result.duplicates) == (0, 0)
    assert [r.reason for r in result.rejected] == [ANOTHER_TENANT]
    assert audit.get_decision("acme", "dec_000001") is None
    got = audit.get_decision("globex", "dec_000001")
    assert got is not None and got.tenant == "globex"


# --- reads -------------------------------------------------------------------------


def test_no_tenant_sees_another(audit: Store) -> None:
    audit.insert_decisions([record(1), record(2, tenant="globex")])
    assert find(audit) == ["dec_000001"] and find(audit, "globex") == ["dec_000002"]
    assert audit.get_decision("globex", "dec_000001") is None
    assert audit.get_decision("acme", "dec_missing") is None


def test_search_filters(audit: Store) -> None:
    audit.insert_decisions(
        [
            record(1, version=1),
            record(2, version=2),
            record(3, ruleset="kyc", status="failed", answers=None),
            record(4, atoms=[("risk", ["carol", "high"]), ("flagged", [])]),
            record(5, atoms=[("decisions", ["x", "y"])]),  # a longer name is not decision/2
            record(6, atoms=[("decision", ["bob"])]),
            record(7, completed=END + timedelta(seconds=1)),  # outside the window
        ]
    )
    assert find(audit) == [f"dec_{n:06d}" for n in (6, 5, 4, 3, 2, 1)]
    assert find(audit, ruleset_name="loan", ruleset_version=2) == ["dec_000002"]
    assert find(audit, ruleset_name="kyc", status="failed") == ["dec_000003"]
    assert find(audit, status="succeeded", ruleset_version=1) == [f"dec_{n:06d}" for n in (6, 5, 4, 1)]
    assert find(audit, predicate="decision/2") == ["dec_000002", "dec_000001"]
    assert find(audit, predicate="decision/1") == ["dec_000006"]
    assert find(audit, predicate=" risk/2 ") == ["dec_000004"]
    assert find(audit, predicate="flagged/0") == ["dec_000004"]
    assert find(audit, predicate="missing/1") == []


def test_the_time_range_is_half_open_and_zone_aware(audit: Store) -> None:
    audit.insert_decisions([record(n) for n in range(1, 6)])  # completed T0+1s … T0+5s
    # [T0+2s, T0+4s) written once as a UTC datetime and once as a +01:00 string
    page = audit.search_decisions("acme", T0 + timedelta(seconds=2), "2026-11-28T11:00:04+01:00")
    assert ids(page) == ["dec_000003", "dec_000002"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"start": END, "end": START}, "empty time range"),
        ({"start": datetime(2026, 11, 28), "end": END}, "no time zone"),
        ({"start": "last week", "end": END}, "invalid timestamp"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 1001}, "page_size"),
        ({"predicate": "decision"}, "name/arity"),
        ({"page_token": "not-base64!!"}, "invalid page token"),
        ({"page_token": "e30"}, "invalid page token"),  # {} : base64 JSON, not ours
    ],
)
def test_bad_search_arguments_are_clear_errors(audit: Store, arguments: dict[str, Any], message: str) -> None:
    call: dict[str, Any] = {"start": START, "end": END} | arguments
    with pytest.raises(ValueError, match=message):
        audit.search_decisions("acme", call.pop("start"), call.pop("end"), **call)


def test_pages_cover_everything_once_in_order(audit: Store) -> None:
    # 23 rows, every third sharing one completed_at: ties are broken by decision_id
    tie = T0 + timedelta(minutes=5)
    audit.insert_decisions([record(n, completed=tie if n % 3 == 0 else None) for n in range(1, 24)])
    pages = all_pages(audit, 5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    flat = [i for p in pages for i in p]
    ties = sorted((f"dec_{n:06d}" for n in range(3, 24, 3)), reverse=True)
    others = sorted((f"dec_{n:06d}" for n in range(1, 24) if n % 3), reverse=True)
    assert flat == ties + others
    assert all_pages(audit, 23) == [flat]  # an exact last page has no next token


def test_pages_are_stable_while_rows_arrive(audit: Store) -> None:
    audit.insert_decisions([record(n) for n in range(10, 20)])
    first = audit.search_decisions("acme", START, END, page_size=4)
    audit.insert_decisions([record(n) for n in range(20, 25)])  # newer rows must not shift later pages
    second = audit.search_decisions("acme", START, END, page_size=4, page_token=first.next_page_token)
    assert ids(first) == ["dec_000019", "dec_000018", "dec_000017", "dec_000016"]
    assert ids(second) == ["dec_000015", "dec_000014", "dec_000013", "dec_000012"]


def test_a_page_token_belongs_to_its_search(audit: Store) -> None:
    audit.insert_decisions([record(n) for n in range(1, 4)] + [record(9, tenant="globex")])
    token = audit.search_decisions("acme", START, END, page_size=1).next_page_token
    assert token is not None
    others: list[tuple[str, dict[str, Any]]] = [
        ("globex", {}),
        ("acme", {"status": "failed"}),
        ("acme", {"ruleset_name": "kyc"}),
    ]
    for tenant, filters in others:
        with pytest.raises(ValueError, match="different tenant, time range or filters"):
            audit.search_decisions(tenant, START, END, page_size=1, page_token=token, **filters)


# --- rulesets and retention ----------------------------------------------------------


def test_ruleset_versions_are_kept_once_per_tenant(audit: Store) -> None:
    kept = RulesetRecord(
        tenant="acme",
        name="loan",
        version=3,
        hash="a" * 64,
        source='p(1). q("ü") :- p(1).\n',
        description="",
        tests=[{"name": "t", "facts": {}, "query": ["p(X)"], "expect": {"p(X)": ["p(1)"]}}],
        published_at=format_timestamp(T0),
        published_by="key_1",
    )
    assert audit.put_ruleset(kept) is True
    assert audit.put_ruleset(kept.model_copy(update={"source": "changed."})) is False
    assert audit.get_ruleset("acme", "loan", 3) == kept
    assert audit.get_ruleset("acme", "loan", 4) is None
    assert audit.get_ruleset("globex", "loan", 3) is None
    assert audit.put_ruleset(kept.model_copy(update={"tenant": "globex"})) is True


def test_expire_keeps_seven_years(audit: Store) -> None:
    cutoff = T0 - timedelta(days=RETENTION_DAYS)
    audit.insert_decisions(
        [
            record(1),
            record(2, completed=cutoff - timedelta(milliseconds=1)),  # on the boundary day, just too old
            record(3, completed=cutoff),  # exactly seven years: kept
            record(4, completed=cutoff - timedelta(days=40)),
        ]
    )
    assert audit.expire(T0) == 2
    assert audit.expire(T0) == 0
    everything = audit.search_decisions("acme", cutoff - timedelta(days=100), END)
    assert ids(everything) == ["dec_000001", "dec_000003"]


# --- both at once ----------------------------------------------------------------------


def test_the_two_adapters_answer_alike(bigquery_store: BigQueryAuditStore) -> None:
    """One batch into both stores; every search, page and read must match, and a
    page token from one adapter continues the search on the other."""
    store = bigquery_store
    local = DuckDBAuditStore()
    try:
        batch: list[Any] = [
            record(
                n,
                ruleset=("loan", "kyc")[n % 2],
                version=1 + n % 3,
                status=("succeeded", "failed")[n % 5 == 0],
            )
            for n in range(1, 31)
        ]
        batch += [record(4), {"decision_id": "dec_x", "tenant": "acme"}]
        here, there = local.insert_decisions(batch), store.insert_decisions(batch)
        assert (here.inserted, here.duplicates) == (there.inserted, there.duplicates) == (30, 1)
        assert [r.reason for r in here.rejected] == [r.reason for r in there.rejected] != []
        filter_sets: list[dict[str, Any]] = [
            {},
            {"ruleset_name": "kyc"},
            {"ruleset_version": 2, "status": "failed"},
        ]
        for filters in filter_sets:
            pages = all_pages(local, 4, **filters)
            assert pages == all_pages(store, 4, **filters) and pages != [[]]
        first = local.search_decisions("acme", START, END, page_size=7)
        assert (
            first.next_page_token == store.search_decisions("acme", START, END, page_size=7).next_page_token
        )
        rest = store.search_decisions("acme", START, END, page_size=100, page_token=first.next_page_token)
        everything = find(local)
        assert ids(first) + ids(rest) == everything and len(everything) == 30
        assert [local.get_decision("acme", i) for i in everything] == [
            store.get_decision("acme", i) for i in everything
        ]
    finally:
        local.close()


# --- batch runs ----------------------------------------------------------------------


def test_batch_runs_are_recorded_once(audit: Store) -> None:
    # put_batch_run is on the port: batch_reason writes through AuditStore, whichever adapter
    from entail.batch import batch_run_row, new_batch_run_id
    from entail.models import utcnow

    version = RulesetRecord(
        tenant="acme",
        name="visits",
        version=1,
        hash="h" * 64,
        source="a.",
        published_at=utcnow(),
        published_by="t",
    )
    row = batch_run_row(
        batch_run_id=new_batch_run_id(),
        tenant="acme",
        ruleset=version,
        dialect="bigquery",
        destination="out",
        manifest=None,
        error={"code": "limit-rows", "message": "x"},
        stats={"jobs": 0},
        started_at=utcnow(),
        completed_at=utcnow(),
    )
    assert audit.put_batch_run(row) is True
    assert audit.put_batch_run(row) is False  # idempotent on batch_run_id
    with pytest.raises(ValueError, match=r"batch_runs\.tenant is required"):
        audit.put_batch_run({**row, "batch_run_id": new_batch_run_id(), "tenant": None})
