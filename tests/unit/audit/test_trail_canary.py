"""The determinism canary on real decisions of the loan example: a clean archive
replays identically; an archived result the engine no longer gives is recorded
with both engine versions and hashes, logged for the alert, and fails the CLI."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from trail_support import NOON, decision, filled_store, ruleset_record

from entail import reasoning
from entail.audit import DuckDBAuditStore, canary
from entail.cli import main

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def test_a_clean_archive_replays_identically() -> None:
    store = filled_store(12)
    report = canary.run(store, sample_size=8, now=NOW, seed="s")
    assert (report.sampled, report.matched, report.mismatches) == (8, 8, [])
    assert report.engine_version == reasoning.ENGINE_VERSION
    # reproducible from the seed
    again = canary.sample(store, NOW, 8, "s")[0]
    assert [r.decision_id for r in again] == [r.decision_id for r in canary.sample(store, NOW, 8, "s")[0]]


def test_strata_cover_every_version_and_age_band() -> None:
    store = filled_store(6)
    store.put_ruleset(ruleset_record(version=2))
    old = NOW - timedelta(days=400)
    store.insert_decisions([decision(100 + i, old + timedelta(minutes=i), version=2) for i in range(3)])
    rows, strata = canary.sample(store, NOW, 2, "s")
    assert strata == 2  # (loan@1, under a week) and (loan@2, over a year)
    assert {r.ruleset.version for r in rows} == {1, 2}  # one of each, though the budget is 2 of 9


def test_a_changed_answer_is_recorded_logged_and_fails_the_cli(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.duckdb"
    filled_store(4, path=path).close()
    with DuckDBAuditStore(path) as store:
        # as if an engine had answered differently when the decision was made
        store.execute(
            "UPDATE decisions SET result_hash = repeat('0', 64), engine_version = 'entail-reasoning/0',"
            " answers = ? WHERE decision_id = 'dec_acme_0000002'",
            ['[{"answers":[],"query":"decision(A, D)"}]'],
        )
        with caplog.at_level(logging.WARNING, logger="entail.canary"):
            report = canary.run(store, sample_size=10, now=NOW)
        assert [m["decision_id"] for m in report.mismatches] == ["dec_acme_0000002"]
        m = report.mismatches[0]
        assert m["original_engine_version"] == "entail-reasoning/0"
        assert m["replay_engine_version"] == reasoning.ENGINE_VERSION
        assert m["detail"]["diff"][0]["added"] == ['decision("app2",approved)']
        stored = canary.mismatches(store)
        assert [s["decision_id"] for s in stored] == ["dec_acme_0000002"]
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "entail.canary"]
    assert logged and logged[0]["event"] == "canary_mismatch"
    out, err = io.StringIO(), io.StringIO()
    code = main(["canary", "--path", str(path), "--sample-size", "10"], out, err)
    assert code == 1, err.getvalue()
    assert "MISMATCH dec_acme_0000002" in out.getvalue()


def test_a_missing_ruleset_version_is_a_mismatch_not_a_crash() -> None:
    store = DuckDBAuditStore(":memory:")
    store.insert_decisions([decision(1, NOON)])  # its version never reached the store
    report = canary.run(store, sample_size=5, now=NOW)
    assert report.mismatches[0]["detail"] == {"error": "ruleset loan@1 is not in the audit store"}
    with pytest.raises(ValueError, match="at least 1"):
        canary.run(store, sample_size=0, now=NOW)
