"""The cloud dataset store on the emulators: gcp-storage-emulator (one bucket per
worker; each test writes under tenants of its own), bqemulator (one per worker,
tests/integration/conftest.py; a fresh BigQuery dataset per test) and the
embedded Redis. Clients are pointed at 127.0.0.1 with anonymous credentials:
nothing reaches Google."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from emulators.bigquery_emulator import BigQueryEmulator
from emulators.gcs_emulator import GcsEmulator, available

from entail.datasets.bigquery_tables import DatasetTables
from entail.datasets.cloud_store import CloudDatasetStore
from entail.datasets.gcs_objects import GcsObjects
from entail.settings import Settings

BUCKET = "entail-datasets-test"


@pytest.fixture(scope="session")
def gcs() -> Iterator[GcsEmulator]:
    reason = available()
    if reason:
        pytest.fail(reason)  # make emulators installs it: a missing emulator is a broken setup
    with GcsEmulator(bucket=BUCKET) as emulator:
        yield emulator


@pytest.fixture
def bq_dataset(emulator: BigQueryEmulator) -> Iterator[str]:
    name = f"datasets_{uuid.uuid4().hex[:10]}"
    client = emulator.client()
    yield name
    client.delete_dataset(f"{client.project}.{name}", delete_contents=True, not_found_ok=True, retry=None)
    client.close()


@pytest.fixture
def cloud_settings(
    settings: Settings, gcs: GcsEmulator, emulator: BigQueryEmulator, bq_dataset: str
) -> Settings:
    """What a backend or worker in cloud mode is given, on the emulators."""
    return settings.model_copy(
        update={
            "dataset_store": "cloud",
            "dataset_bucket": gcs.bucket,
            "dataset_storage_endpoint": gcs.endpoint,
            "dataset_bq_dataset": bq_dataset,
            "bigquery_project": emulator.project,
            "bigquery_endpoint": emulator.endpoint,
        }
    )


def make_store(
    redis: aioredis.Redis, root: Path, gcs: GcsEmulator, emulator: BigQueryEmulator, bq_dataset: str
) -> CloudDatasetStore:
    """A store as one backend or worker has it: its own scratch ``root``, the shared
    bucket, BigQuery dataset and Redis."""
    tables = DatasetTables(emulator.client(), bq_dataset, retries=False)
    tables.ensure_dataset()
    return CloudDatasetStore(redis, root, GcsObjects(gcs.bucket, token=None, endpoint=gcs.endpoint), tables)


@pytest.fixture
async def store(
    redis: aioredis.Redis, tmp_path: Path, gcs: GcsEmulator, emulator: BigQueryEmulator, bq_dataset: str
) -> AsyncIterator[CloudDatasetStore]:
    s = make_store(redis, tmp_path / "backend-1", gcs, emulator, bq_dataset)
    yield s
    s.close()
