"""The decision report through HTTP (issue 17 §4) on the loan example: served as
HTML from the audited row with its SHA-256 in the headers, the same bytes when
asked again and the hash recorded once; a live decision marked live and not
recorded; other tenants and unknown ids refused precisely; auditors read it too."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.records import store_pending
from support.waiting import wait_for

from entail import reasoning
from entail.audit.duckdb_store import DuckDBAuditStore

from .stack import LocalStack, decide

LOAN = Path(reasoning.__file__).parent.parent / "examples" / "loan"
EVE = {
    "applicant": [["eve"]],
    "income": [["eve", 100000, "salary"]],
    "debt": [["eve", 90000, "car"]],
    "requested": [["eve", 1000000]],
    "credit_event": [["eve", "default", 2024]],
    "employment": [["eve", 60]],
}


@pytest.fixture(scope="module")
def stack(shared_stack: LocalStack) -> LocalStack:
    s = shared_stack.with_own_tenants("report")
    with s.client("acme") as acme:
        body = {"name": "loan", "source": (LOAN / "program.lp").read_text()}
        published = acme.post("/v1/rulesets", json=body)
        assert published.status_code in (200, 201), published.text
    return s


@pytest.fixture(scope="module")
def store(stack: LocalStack) -> Iterator[DuckDBAuditStore]:
    audit = DuckDBAuditStore(stack.stack.settings.data_dir / "audit.duckdb", shared=True)
    yield audit
    audit.close()


def audited(stack: LocalStack, store: DuckDBAuditStore, decision_id: str) -> None:
    tenant = stack.tenant("acme")
    wait_for(lambda: store.get_decision(tenant, decision_id), what=f"audit row of {decision_id}")


def report_rows(store: DuckDBAuditStore, decision_id: str) -> list[tuple[str, str]]:
    found = store.fetch(
        "SELECT report_sha256, generator_version FROM decision_reports WHERE decision_id = ?", [decision_id]
    )
    return [(str(a), str(b)) for a, b in found]


def test_an_audited_decision_is_reported_with_its_hash_recorded_once(
    stack: LocalStack, store: DuckDBAuditStore
) -> None:
    with stack.client("acme") as acme:
        decided = decide(
            acme, ruleset="loan", facts=EVE, query=["decision(A, D)"], explain=True, wait_ms=10000
        )
        assert decided.status_code == 200, decided.text
        decision_id = decided.json()["decision_id"]
        wait_for(
            lambda: store.get_decision(stack.tenant("acme"), decision_id), what=f"audit row of {decision_id}"
        )

        first = acme.get(f"/v1/decisions/{decision_id}/report")
        assert first.status_code == 200, first.text
        assert first.headers["content-type"].startswith("text/html")
        sha = hashlib.sha256(first.content).hexdigest()
        assert first.headers["x-entail-report-sha256"] == sha
        assert first.headers["etag"] == f'"{sha}"'
        assert first.headers["x-entail-report-source"] == "audit"
        assert "script-src" not in first.headers["content-security-policy"]
        assert "default-src 'none'" in first.headers["content-security-policy"]
        html = first.text
        assert "Audited record" in html and "loan version 1" in html
        assert "A loan default was recorded in 2024" in html and "by the rule at line" in html
        assert decided.json()["ruleset"]["hash"] in html

        second = acme.get(f"/v1/decisions/{decision_id}/report")
        assert second.content == first.content  # byte-identical: the time is only in a header
        assert second.headers["x-entail-report-generated-at"] >= first.headers["x-entail-report-generated-at"]
        assert report_rows(store, decision_id) == [(sha, "entail.report.v1")]

        cached = acme.get(f"/v1/decisions/{decision_id}/report", headers={"If-None-Match": f'"{sha}"'})
        assert cached.status_code == 304 and not cached.content

        structured = acme.get(f"/v1/decisions/{decision_id}/report", params={"format": "json"})
        assert structured.status_code == 200
        doc = structured.json()
        assert doc["report_sha256"] == sha and doc["source"] == "audit"
        assert [r["code"] for r in doc["reasons"]] == ["L03", "L02", "L04"]
    assert report_rows(store, decision_id) == [(sha, "entail.report.v1")]


def test_a_live_decision_is_reported_as_live_and_not_recorded(
    stack: LocalStack, store: DuckDBAuditStore
) -> None:
    decision_id = store_pending(stack.redis_url, stack.tenant("acme"))  # pending: no audit row yet
    with stack.client("acme") as acme:
        live = acme.get(f"/v1/decisions/{decision_id}/report")
    assert live.status_code == 200, live.text
    assert live.headers["x-entail-report-source"] == "live"
    assert "not yet in the audit trail" in live.text
    assert report_rows(store, decision_id) == []


def test_other_tenants_and_unknown_ids_are_refused_and_auditors_may_read(stack: LocalStack) -> None:
    with stack.client("acme") as acme:
        decided = decide(acme, ruleset="loan", facts=EVE, query=["decision(A, D)"], wait_ms=10000)
        decision_id = decided.json()["decision_id"]
        missing = acme.get("/v1/decisions/dec_nope/report")
        bad_format = acme.get(f"/v1/decisions/{decision_id}/report", params={"format": "pdf"})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert bad_format.status_code == 422 and bad_format.headers["content-type"] == "application/problem+json"
    with stack.client("globex") as globex:
        assert globex.get(f"/v1/decisions/{decision_id}/report").status_code == 404
    # the auditor's key (scope audit, not decide) reads the report too
    with stack.client("acme_audit") as auditor:
        assert auditor.get(f"/v1/decisions/{decision_id}/report").status_code == 200


def test_the_cli_saves_the_report_through_the_sdk(
    stack: LocalStack, store: DuckDBAuditStore, tmp_path: Path
) -> None:
    from entail_client import Client

    from entail.cli import main

    with stack.client("acme") as acme:
        decided = decide(acme, ruleset="loan", facts=EVE, query=["decision(A, D)"], wait_ms=10000)
        decision_id = decided.json()["decision_id"]
    wait_for(
        lambda: store.get_decision(stack.tenant("acme"), decision_id), what=f"audit row of {decision_id}"
    )
    key = stack.key("acme")
    with Client(stack.url, api_key=key) as client:
        report = client.report(decision_id)
    assert report.source == "audit" and report.sha256 == hashlib.sha256(report.html).hexdigest()
    target = tmp_path / "report.html"
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", decision_id, "--url", stack.url, "--key", key, "-o", str(target)], out, err)
    assert code == 0, err.getvalue()
    assert target.read_bytes() == report.html  # the same bytes, asked twice
    assert report.sha256 in out.getvalue()
    # to standard output: the document alone; an unknown id is the service's 404, exit 2
    out, err = io.StringIO(), io.StringIO()
    assert main(["report", decision_id, "--url", stack.url, "--key", key], out, err) == 0
    assert out.getvalue().encode() == report.html and report.sha256 in err.getvalue()
    err = io.StringIO()
    assert main(["report", "dec_nope", "--url", stack.url, "--key", key], io.StringIO(), err) == 2
    assert "404" in err.getvalue()
