"""The trail on the real local stack (embedded Redis, backend, worker, relay,
audit sink on 127.0.0.1): decisions made through the API carry provenance
columns from their proofs; ``entail audit roots`` signs the days; the backend
serves verify, inclusion and provenance; the standalone verifier accepts the
served proof."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.waiting import wait_for
from trail_support import DAY, NOON, decision

from entail.audit import DuckDBAuditStore
from entail.audit.provenance import fact_hash
from integration.services.stack import LocalStack, decide, local_stack

PROGRAM = "flag(X) :- amount(X, A), A > 100. ok(X) :- amount(X, _), not flag(X). #defined amount/2."
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(tmp_path_factory.mktemp("trail")) as s:
        yield s


@pytest.fixture(scope="module")
def store(stack: LocalStack) -> Iterator[DuckDBAuditStore]:
    audit = DuckDBAuditStore(stack.stack.settings.data_dir / "audit.duckdb", shared=True)
    yield audit
    audit.close()


def cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENTAIL_DATA_DIR": str(stack.stack.settings.data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "entail.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_provenance_of_decisions_made_through_the_api(stack: LocalStack, store: DuckDBAuditStore) -> None:
    with stack.client("acme") as acme:
        assert acme.post("/v1/rulesets", json={"name": "trail", "source": PROGRAM}).status_code in (200, 201)
        flagged = decide(
            acme,
            ruleset="trail",
            facts={"amount": [["a", 500]]},
            query=["flag(X)"],
            explain=True,
            wait_ms=10000,
        ).json()
        plain = decide(
            acme, ruleset="trail", facts={"amount": [["b", 5]]}, query=["ok(X)"], explain=False, wait_ms=10000
        ).json()
    row = wait_for(lambda: store.get_decision("acme", flagged["decision_id"]), what="audit row")
    wait_for(lambda: store.get_decision("acme", plain["decision_id"]), what="audit row")
    assert row.explain
    now = datetime.now(UTC)
    window = {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}
    with stack.client("acme_audit") as audit:
        by_rule = audit.get(
            "/v1/audit/provenance", params={**window, "ruleset": "trail", "version": 1, "rule": 0}
        )
        assert by_rule.status_code == 200, by_rule.text
        assert [d["decision_id"] for d in by_rule.json()["items"]] == [flagged["decision_id"]]
        assert by_rule.json()["items"][0]["rule_ids"] == [0]
        by_fact = audit.get("/v1/audit/provenance", params={**window, "fact": 'amount( "a", 500 )'}).json()
        assert [d["decision_id"] for d in by_fact["items"]] == [flagged["decision_id"]]
        by_hash = audit.get("/v1/audit/provenance", params={**window, "fact": fact_hash('amount("a",500)')})
        assert by_hash.json()["items"] == by_fact["items"]
        # the unexplained decision has no known rules: it never matches a rule query
        assert plain["decision_id"] not in [d["decision_id"] for d in by_rule.json()["items"]]
        for bad in (
            {},  # no criterion
            {"rule": 0},  # a rule without its ruleset version
            {"reason_code": "x", "page_token": "garbage"},
        ):
            response = audit.get("/v1/audit/provenance", params={**window, **bad})
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
    with stack.client("acme") as no_audit_scope:
        assert no_audit_scope.get("/v1/audit/provenance", params={**window, "rule": 0}).status_code == 403


def test_roots_verify_and_inclusion_served_and_checked_standalone(
    stack: LocalStack, store: DuckDBAuditStore, tmp_path: Path
) -> None:
    # a past day's decisions (the worker only makes today's, and only ended days get roots)
    assert store.insert_decisions([decision(i, NOON + timedelta(minutes=i)) for i in range(6)]).inserted == 6
    built = cli(stack, "audit", "roots", "--grace-s", "0")
    assert built.returncode == 0, built.stderr
    assert f"acme {DAY}: root over 6 row(s)" in built.stdout
    verified = cli(stack, "audit", "verify", "--tenant", "acme", "--day", DAY)
    assert verified.returncode == 0 and verified.stdout.startswith("OK"), verified.stdout + verified.stderr
    with stack.client("acme_audit") as audit:
        report = audit.get("/v1/audit/verify", params={"day": DAY}).json()
        assert report["ok"] and report["rows"] == 6
        proof = audit.get("/v1/audit/decisions/dec_acme_0000002/inclusion")
        assert proof.status_code == 200, proof.text
        missing = audit.get("/v1/audit/decisions/dec_nope/inclusion")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith(
            "application/problem"
        )
        assert audit.get("/v1/audit/verify", params={"day": "2026-13-01"}).status_code == 422
    with stack.client("globex") as other_tenant:
        assert other_tenant.get("/v1/audit/decisions/dec_acme_0000002/inclusion").status_code in (403, 404)
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof.json()))
    keys = stack.stack.settings.data_dir / "audit-keys" / "public"
    checked = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "audit_verifier" / "verify.py"),
            "inclusion",
            str(path),
            "--key",
            str(keys),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # an edit after signing: verify names the row, over the API and the CLI
    store.execute("UPDATE decisions SET worker = 'w-forged' WHERE decision_id = 'dec_acme_0000004'")
    with stack.client("acme_audit") as audit:
        report = audit.get("/v1/audit/verify", params={"day": DAY}).json()
    assert not report["ok"]
    assert report["first_mismatch"]["decision_id"] == "dec_acme_0000004"
    failed = cli(stack, "audit", "verify", "--tenant", "acme", "--day", DAY)
    assert failed.returncode == 1 and "dec_acme_0000004" in failed.stdout
