"""One BigQuery emulator (bqemulator) per test session worker; a dataset per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from emulators.bigquery_emulator import BigQueryEmulator, available

from entail.audit.bigquery_store import BigQueryAuditStore


@pytest.fixture(scope="session")
def emulator() -> Iterator[BigQueryEmulator]:
    reason = available()
    if reason:
        pytest.fail(reason)  # make test installs it: a missing emulator is a broken setup, not a skip
    with BigQueryEmulator(project="entail-test") as bq:
        yield bq


@pytest.fixture
def store(emulator: BigQueryEmulator) -> Iterator[BigQueryAuditStore]:
    s = BigQueryAuditStore(emulator.client(), dataset=f"audit_{uuid.uuid4().hex[:10]}", retry=None)
    s.ensure_tables()
    yield s
    s.client.delete_dataset(f"{s.project}.{s.dataset}", delete_contents=True, not_found_ok=True, retry=None)
    s.close()
