"""One BigQuery emulator (bqemulator) per test session worker for the BigQuery half of the SQL path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emulators.bigquery_emulator import BigQueryEmulator, available


@pytest.fixture(scope="session")
def bq_emulator() -> Iterator[BigQueryEmulator]:
    reason = available()
    if reason:
        pytest.fail(reason)  # make test installs it: a missing emulator is a broken setup, not a skip
    with BigQueryEmulator(project="entail-test") as bq:
        yield bq


@pytest.fixture(scope="session")
def bq_client(bq_emulator: BigQueryEmulator) -> Iterator[object]:
    client = bq_emulator.client()
    yield client
    client.close()
