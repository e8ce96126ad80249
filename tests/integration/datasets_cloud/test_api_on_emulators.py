"""The datasets API of a backend in cloud mode (``ENTAIL_DATASET_STORE=cloud``) on
the emulators: uploads land in the bucket and BigQuery, reads come back through
the bucket, tenants stay apart, and a Cloud Storage outage is a 503 problem."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from emulators.bigquery_emulator import BigQueryEmulator
from emulators.gcs_emulator import GcsEmulator
from entail_backend.app import create_app
from fastapi.testclient import TestClient

from entail.auth import key_entry
from entail.datasets.bigquery_tables import DatasetTables
from entail.datasets.port import DatasetVersion
from entail.settings import Settings

AUTHOR, READER, STRANGER = "ent_dsc_author", "ent_dsc_reader", "ent_dsc_globex"
NDJSON = {"Content-Type": "application/x-ndjson"}
ORG = b'["manages", "alice", "bob"]\n["manages", "bob", "carol"]\n["limit", "alice", 10000]\n'


def as_(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def configured(cloud_settings: Settings) -> Settings:
    keys = [
        key_entry(AUTHOR, "dsc-author", "acme", ["author", "decide"]),
        key_entry(READER, "dsc-reader", "acme", ["decide"]),
        key_entry(STRANGER, "dsc-globex", "globex", ["admin"]),
    ]
    return cloud_settings.model_copy(update={"api_keys_json": json.dumps(keys)})


@pytest.fixture
def client(cloud_settings: Settings, emulator: BigQueryEmulator) -> Iterator[TestClient]:
    settings = configured(cloud_settings)
    # the BigQuery dataset is Terraform's in the cloud
    DatasetTables(emulator.client(), settings.dataset_bq_dataset, retries=False).ensure_dataset()
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as c:
        yield c


def test_upload_read_page_and_diff_through_the_bucket(
    client: TestClient, gcs: GcsEmulator, emulator: BigQueryEmulator, cloud_settings: Settings
) -> None:
    created = client.post("/v1/datasets/org", content=ORG, headers=as_(AUTHOR, **NDJSON))
    assert created.status_code == 201, created.text
    v1 = created.json()
    assert (v1["version"], v1["facts"]) == (1, 3)
    assert {f"datasets/acme/org/1/{p}.parquet" for p in ("limit", "manages")} <= set(gcs.objects())
    again = client.post("/v1/datasets/org", content=ORG, headers=as_(AUTHOR, **NDJSON))
    assert again.status_code == 200 and again.json()["version"] == 1

    csv = client.post(
        "/v1/datasets/org",
        params={"predicate": "limit", "base": "org@1", "tag": "prod"},
        content=b"alice,20000\nbob,500\n",
        headers=as_(AUTHOR, **{"Content-Type": "text/csv"}),
    )
    assert csv.status_code == 201, csv.text
    assert csv.json()["version"] == 2 and "prod" in csv.json()["tags"]

    facts = client.get("/v1/datasets/org@prod/facts", params={"predicate": "limit"}, headers=as_(READER))
    assert facts.status_code == 200, facts.text
    assert facts.json()["rows"] == [["alice", 20000], ["bob", 500]]
    diff = client.get("/v1/datasets/org/diff", params={"from": "1", "to": "prod"}, headers=as_(READER))
    assert diff.status_code == 200, diff.text
    assert [(d["predicate"], d["added"], d["removed"]) for d in diff.json()["predicates"]] == [
        ("limit", 2, 1)
    ]

    # the rows are in BigQuery too: a table per predicate, a version's rows under its number
    tables = DatasetTables(emulator.client(), cloud_settings.dataset_bq_dataset, retries=False)
    try:
        for number, limits in ((1, 1), (2, 2)):
            got = client.get(f"/v1/datasets/org@{number}", headers=as_(READER)).json()
            version = DatasetVersion(
                tenant="acme", name="org", version=number, hash=got["hash"], predicates=(),
                facts=got["facts"], bytes=0, created_at="", created_by="",
            )  # fmt: skip
            assert tables.count(version, "limit", 2) == limits
            assert tables.count(version, "manages", 2) == 2
    finally:
        tables.client.close()  # type: ignore[no-untyped-call]

    # another tenant sees none of it
    assert client.get("/v1/datasets/org@1", headers=as_(STRANGER)).status_code == 404


def test_cloud_storage_down_is_a_503_problem_and_no_version(
    cloud_settings: Settings, emulator: BigQueryEmulator
) -> None:
    down = configured(cloud_settings).model_copy(update={"dataset_storage_endpoint": "http://127.0.0.1:9"})
    with TestClient(create_app(down), base_url="http://127.0.0.1") as c:
        response = c.post("/v1/datasets/org", content=ORG, headers=as_(AUTHOR, **NDJSON))
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("dataset-storage-unavailable")
        assert response.json()["title"] == "Dataset storage unavailable"
        assert response.headers["Retry-After"] == "5"
        assert c.get("/v1/datasets/org", headers=as_(READER)).status_code == 404
    with pytest.raises(httpx.ConnectError):
        httpx.get("http://127.0.0.1:9", timeout=1)
