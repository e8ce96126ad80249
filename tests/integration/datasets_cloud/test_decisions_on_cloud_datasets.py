"""Decisions over datasets with the whole local stack in cloud dataset mode
(``ENTAIL_DATASET_STORE=cloud`` on the emulators): the backend uploads to the
bucket and BigQuery, the worker (a process of its own) reads the version from
the bucket with its hash verified, the decision records the version it read,
a new version changes the answer, and replay reads the recorded version again
from the bucket."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulators.bigquery_emulator import BigQueryEmulator
from emulators.gcs_emulator import GcsEmulator
from support.waiting import wait_for

from entail.datasets.bigquery_tables import DatasetTables

from ..datasets.test_bindings import CASE, EXPENSES, NDJSON, ORG_V1, ORG_V2, QUERY, approvers
from ..services.stack import LocalStack, decide, local_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, gcs: GcsEmulator, emulator: BigQueryEmulator
) -> Iterator[LocalStack]:
    dataset = f"datasets_{uuid.uuid4().hex[:10]}"
    tables = DatasetTables(emulator.client(), dataset, retries=False)
    tables.ensure_dataset()  # Terraform's job in the cloud
    try:
        with local_stack(
            tmp_path_factory.mktemp("cloud-datasets"),
            ENTAIL_DATASET_STORE="cloud",
            ENTAIL_DATASET_BUCKET=gcs.bucket,
            ENTAIL_DATASET_STORAGE_ENDPOINT=gcs.endpoint,
            ENTAIL_DATASET_BQ_DATASET=dataset,
            ENTAIL_BIGQUERY_PROJECT=emulator.project,
            ENTAIL_BIGQUERY_ENDPOINT=emulator.endpoint,
        ) as s:
            yield s
    finally:
        tables.client.delete_dataset(
            f"{tables.project}.{dataset}", delete_contents=True, not_found_ok=True, retry=None
        )
        tables.client.close()  # type: ignore[no-untyped-call]


def ask(acme: httpx.Client) -> dict[str, Any]:
    answer = decide(acme, ruleset="exp", facts=CASE, query=QUERY, wait_ms=20000)
    assert answer.status_code in (200, 201), answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_decisions_read_the_bound_version_from_the_bucket(stack: LocalStack, gcs: GcsEmulator) -> None:
    tenant = stack.tenant("acme")
    with stack.client("acme") as acme:
        v1 = acme.post("/v1/datasets/orgchart", params={"tag": "prod"}, content=ORG_V1, headers=NDJSON)
        assert v1.status_code == 201, v1.text
        assert f"datasets/{tenant}/orgchart/1/manages.parquet" in gcs.objects()
        published = acme.post(
            "/v1/rulesets",
            json={"name": "exp", "source": EXPENSES, "datasets": {"orgchart": "orgchart@prod"}},
        )
        assert published.status_code == 201, published.text

        # no local file to fall back on: the backend's verified copy goes, the worker
        # (which shares the data directory here) must read the bucket
        shutil.rmtree(Path(stack.stack.settings.data_dir) / "datasets" / tenant)
        first = ask(acme)
        assert approvers(first) == {"alice", "bob"}
        assert first["datasets"] == [
            {"binding": "orgchart", "name": "orgchart", "version": 1, "hash": v1.json()["hash"]}
        ]
        assert not (Path(stack.stack.settings.data_dir) / "datasets" / tenant).exists()

        v2 = acme.post("/v1/datasets/orgchart", params={"tag": "prod"}, content=ORG_V2, headers=NDJSON)
        assert v2.status_code == 201 and v2.json()["version"] == 2, v2.text
        second = ask(acme)
        assert approvers(second) == {"alice"} and second["datasets"][0]["version"] == 2

    with stack.client("acme_audit") as audit:

        def replayed() -> dict[str, Any] | None:
            answer = audit.post(f"/v1/decisions/{first['decision_id']}/replay")
            return answer.json() if answer.status_code == 200 else None

        replay = wait_for(replayed, what="the replay")
        assert replay["identical"] is True, replay
