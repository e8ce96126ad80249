"""``put_decision_report`` (docs/reports.md) against both adapters: the DuckDB store
and the BigQuery store on bqemulator record a report's hash once per
(decision_id, report_sha256), a second report of the same decision apart, and
refuse a row that is not a ``decision_reports`` row."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from entail.audit import DuckDBAuditStore
from entail.audit.bigquery_store import BigQueryAuditStore

Store = DuckDBAuditStore | BigQueryAuditStore


@pytest.fixture(params=["duckdb", "bigquery"])
def audit(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "bigquery":
        yield request.getfixturevalue("bigquery_store")  # tests/integration/conftest.py: a fresh dataset
        return
    local = DuckDBAuditStore()
    yield local
    local.close()


def row(sha: str, generated_at: str = "2026-12-01T10:00:00.000Z") -> dict[str, str]:
    return {
        "decision_id": "dec_000001",
        "tenant": "acme",
        "report_sha256": sha,
        "generated_at": generated_at,
        "generator_version": "entail.report.v1",
    }


def stored(audit: Store) -> list[tuple[str, str]]:
    if isinstance(audit, DuckDBAuditStore):
        found = audit.fetch("SELECT decision_id, report_sha256 FROM decision_reports ORDER BY report_sha256")
        return [(str(a), str(b)) for a, b in found]
    table = audit.table_id("decision_reports")
    rows = audit.query(f"SELECT decision_id, report_sha256 FROM `{table}` ORDER BY report_sha256", {})
    return [(r["decision_id"], r["report_sha256"]) for r in rows]


def test_a_report_hash_is_recorded_once_per_distinct_report(audit: Store) -> None:
    assert audit.put_decision_report(row("a" * 64)) is True
    assert audit.put_decision_report(row("a" * 64, "2026-12-01T11:00:00.000Z")) is False
    assert audit.put_decision_report(row("b" * 64)) is True  # the same decision, another report
    assert stored(audit) == [("dec_000001", "a" * 64), ("dec_000001", "b" * 64)]
    with pytest.raises(ValueError, match=r"decision_reports\.report_sha256 is required"):
        audit.put_decision_report({**row("c" * 64), "report_sha256": None})  # type: ignore[dict-item]
