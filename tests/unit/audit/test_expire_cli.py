"""`entail audit expire`: the local store keeps the same 7 years as BigQuery."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_duckdb_store import record

from entail.audit import DuckDBAuditStore
from entail.cli import main


def test_expire_removes_only_decisions_past_retention(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    now = datetime.now(UTC)
    with DuckDBAuditStore(path) as store:
        store.insert_decisions(
            [record(1, completed=now - timedelta(days=2600)), record(2, completed=now - timedelta(days=30))]
        )
    out, err = io.StringIO(), io.StringIO()
    assert main(["audit", "expire", "--path", str(path)], out, err) == 0
    assert "removed 1 decision(s) completed more than 2557 days ago" in out.getvalue()
    with DuckDBAuditStore(path) as store:
        assert store.get_decision("acme", "dec_000001") is None
        assert store.get_decision("acme", "dec_000002") is not None


def test_expire_without_a_store_is_a_clear_error(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["audit", "expire", "--path", str(tmp_path / "none.duckdb")], out, err) == 2
    assert "no audit store" in err.getvalue()
