"""The BigQuery adapter's own tests: the emulator and a store on a fresh dataset
come from tests/integration/conftest.py (one emulator per worker, shared with
the both-adapters contract in tests/integration/audit/)."""

from __future__ import annotations

import pytest

from entail.audit.bigquery_store import BigQueryAuditStore


@pytest.fixture
def store(bigquery_store: BigQueryAuditStore) -> BigQueryAuditStore:
    return bigquery_store
