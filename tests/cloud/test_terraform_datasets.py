"""Invariants of terraform/modules/entail/datasets.tf, read with python-hcl2
(docs/datasets.md, "Storage"): the dataset bucket is private, uniform, versioned
and logged; the per-predicate tables live in a BigQuery dataset of their own; the
backend may create and read objects but never delete or overwrite one, and load
tables in that dataset only; the worker may only read objects; every deployable
is told the bucket and the dataset through settings the services read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from entail.settings import Settings

from . import iac_tools as iac

MODULE = "modules/entail"


@pytest.fixture(scope="module")
def entail() -> dict[tuple[str, str], dict[str, Any]]:
    return iac.resources(MODULE)


def _one(value: Any) -> Any:
    """python-hcl2 wraps nested blocks in lists."""
    return value[0] if isinstance(value, list) else value


def test_the_dataset_bucket_is_private_uniform_versioned_and_logged(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    bucket = entail[("google_storage_bucket", "datasets")]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert _one(bucket["versioning"])["enabled"] is True
    assert _one(bucket["logging"])["log_bucket"] == "${google_storage_bucket.access_logs.name}"
    # only noncurrent (deleted by hand) objects ever expire: a live version's never
    rule = _one(bucket["lifecycle_rule"])
    condition = _one(rule["condition"])
    assert condition["with_state"] == "ARCHIVED"
    assert "age" not in condition
    assert _one(rule["action"])["type"] == "Delete"


def test_dataset_tables_have_a_bigquery_dataset_of_their_own(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    dataset = entail[("google_bigquery_dataset", "datasets")]
    assert dataset["dataset_id"] == Settings.model_fields["dataset_bq_dataset"].default
    assert dataset["location"] == "${var.bigquery_location}"
    assert dataset["delete_contents_on_destroy"] is False
    audit = entail[("google_bigquery_dataset", "audit")]
    assert audit["dataset_id"] != dataset["dataset_id"]


def _grants_on(entail: dict[tuple[str, str], dict[str, Any]], ref: str) -> dict[str, set[str]]:
    """member -> roles granted on the resource ``ref`` (a bucket or a dataset)."""
    out: dict[str, set[str]] = {}
    for (rtype, _), body in entail.items():
        if rtype not in {"google_storage_bucket_iam_member", "google_bigquery_dataset_iam_member"}:
            continue
        if body.get("bucket", body.get("dataset_id")) != ref:
            continue
        roles = body["role"]
        if roles == "${each.value}":
            roles = json.loads(body["for_each"].removeprefix("${toset(").removesuffix(")}"))
        else:
            roles = [roles]
        out.setdefault(body["member"], set()).update(roles)
    return out


def test_the_backend_writes_and_the_worker_only_reads_with_least_privilege(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    backend = "${google_service_account.backend.member}"
    worker = "${google_service_account.worker.member}"
    on_bucket = _grants_on(entail, "${google_storage_bucket.datasets.name}")
    # create and read; objectAdmin (delete, hence overwrite) for nobody
    assert on_bucket == {
        backend: {"roles/storage.objectCreator", "roles/storage.objectViewer"},
        worker: {"roles/storage.objectViewer"},
    }
    on_tables = _grants_on(entail, "${google_bigquery_dataset.datasets.dataset_id}")
    assert on_tables == {backend: {"roles/bigquery.dataEditor"}}


def test_every_deployable_is_told_where_datasets_live() -> None:
    env = iac.locals_of(MODULE)["settings_env"]
    assert env["ENTAIL_DATASET_STORE"] == "cloud"
    assert env["ENTAIL_DATASET_BUCKET"] == "${google_storage_bucket.datasets.name}"
    assert env["ENTAIL_DATASET_BQ_DATASET"] == "${google_bigquery_dataset.datasets.dataset_id}"
    outputs = iac.named("output", MODULE)
    assert outputs["dataset_bucket"]["value"] == "${google_storage_bucket.datasets.name}"
    assert outputs["dataset_bigquery_dataset"]["value"] == "${google_bigquery_dataset.datasets.dataset_id}"


def test_an_upload_fits_the_backends_in_memory_file_system() -> None:
    # Cloud Run's file system is memory: the spool and the built files of an upload
    # live there, so the backend's cap follows its memory (docs/datasets.md, "Storage")
    backend_env = iac.locals_of(MODULE)["backend_env"]
    assert "ENTAIL_DATASET_MAX_BYTES = tostring(floor(var.backend_memory_mib / 4) * 1048576)" in backend_env
