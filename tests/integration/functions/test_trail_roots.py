"""functions/trail_roots through functions-framework's test client, against bqemulator
(the audit store) and gcp-storage-emulator (the roots bucket), signing with a local
Ed25519 key (Cloud KMS is the same Signer port; its REST client is tested in
tests/unit/audit/test_trail_roots.py): the daily roots job builds, stores, publishes
and verifies; a second run builds nothing and finds its objects in place; the canary
job replays; bad requests are problems, not 500s."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from emulators.bigquery_emulator import BigQueryEmulator
from emulators.gcs_emulator import GcsEmulator, available
from functions_framework import create_app
from trail_support import decision, ruleset_record

from entail.audit import roots
from entail.audit.bigquery_store import BigQueryAuditStore
from entail.audit.publish import document
from entail.audit.signing import Keyring

SOURCE = Path(__file__).resolve().parents[3] / "functions" / "trail_roots" / "main.py"
YESTERDAY = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)
DAY = YESTERDAY.date().isoformat()


@pytest.fixture(scope="module")
def gcs() -> Iterator[GcsEmulator]:
    reason = available()
    if reason:
        pytest.fail(reason)  # make emulators installs it: a missing emulator is a broken setup
    with GcsEmulator(bucket="entail-roots") as emulator:
        yield emulator


@pytest.fixture
def store(emulator: BigQueryEmulator) -> Iterator[BigQueryAuditStore]:
    s = BigQueryAuditStore(emulator.client(), dataset=f"trail_{uuid.uuid4().hex[:8]}", retry=None)
    s.ensure_tables()
    s.put_ruleset(ruleset_record())
    assert s.insert_decisions([decision(i, YESTERDAY + timedelta(minutes=i)) for i in range(4)]).inserted == 4
    yield s
    s.client.delete_dataset(f"{s.project}.{s.dataset}", delete_contents=True, not_found_ok=True, retry=None)
    s.close()


@pytest.fixture
def client(
    store: BigQueryAuditStore,
    emulator: BigQueryEmulator,
    gcs: GcsEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ENTAIL_BIGQUERY_DATASET", store.dataset)
    monkeypatch.setenv("ENTAIL_AUDIT_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("ENTAIL_AUDIT_ROOTS_BUCKET", gcs.bucket)
    monkeypatch.setenv("ENTAIL_AUDIT_STORAGE_ENDPOINT", gcs.endpoint)
    monkeypatch.setenv("ENTAIL_BIGQUERY_TIMEOUT_S", "30")
    app = create_app(target="trail_roots", source=str(SOURCE))
    yield app.test_client()
    main = sys.modules.get("main")
    if main is not None and hasattr(main, "reset"):
        main.reset()


def test_the_daily_job_builds_stores_publishes_and_verifies(
    client: Any, store: BigQueryAuditStore, gcs: GcsEmulator, tmp_path: Path
) -> None:
    time.sleep(0.005)
    resp = client.post("/", json={"job": "roots", "grace_s": 0})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    doc = resp.get_json()
    assert [(b["tenant"], b["day"], b["seq"], b["leaf_count"]) for b in doc["built"]] == [("acme", DAY, 0, 4)]
    name = f"roots/acme/{DAY}.json"
    assert doc["published"] == {"created": [name], "existing": []}
    assert doc["held_rows_copied"] == 0
    # the published object is the stored root, byte for byte, and it verifies
    (root,) = roots_of(store)
    assert gcs.objects()[name] == document(root)
    keyring = Keyring(tmp_path / "keys" / "public")
    assert roots.verify_day(store, keyring, "acme", DAY).ok
    published = json.loads(gcs.objects()[name])
    assert roots.check_root_signature(published, keyring) is None
    # a late row: the next run signs a supplementary root and publishes it beside the first
    store.insert_decisions([decision(9, YESTERDAY + timedelta(hours=2))])
    time.sleep(0.005)
    again = client.post("/", json={"job": "roots", "grace_s": 0}).get_json()
    assert [(b["seq"], b["leaf_count"]) for b in again["built"]] == [(1, 1)]
    assert again["published"] == {"created": [f"roots/acme/{DAY}-supplementary-1.json"], "existing": [name]}
    assert roots.verify_day(store, keyring, "acme", DAY).to_json()["roots"] == 2


def roots_of(store: BigQueryAuditStore) -> list[dict[str, Any]]:
    from entail.audit.bigquery_trail import roots_of as read

    return read(store, "tenant = @tenant", {"tenant": "acme"})


def test_the_canary_job_replays_a_sample(client: Any) -> None:
    resp = client.post("/", json={"job": "canary", "sample_size": 3, "seed": "s"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    doc = resp.get_json()
    assert (doc["sampled"], doc["matched"], doc["mismatched"]) == (3, 3, 0)


@pytest.mark.parametrize(
    ("method", "kwargs", "status", "detail"),
    [
        ("get", {}, 405, "GET is not allowed"),
        ("post", {"data": "x", "content_type": "text/plain"}, 415, "application/json"),
        ("post", {"data": "{", "content_type": "application/json"}, 400, "not JSON"),
        ("post", {"json": ["roots"]}, 422, "JSON object"),
        ("post", {"json": {"job": "rebuild"}}, 422, "job must be"),
        ("post", {"json": {"job": "roots", "grace_s": -1}}, 422, "grace_s"),
        (
            "post",
            {"json": {"job": "roots", "sample_size": 3}},
            422,
            "unknown field(s) for job roots: sample_size",
        ),
        ("post", {"json": {"job": "canary", "sample_size": 0}}, 422, "sample_size"),
    ],
)
def test_bad_requests_are_problems(
    client: Any, method: str, kwargs: dict[str, Any], status: int, detail: str
) -> None:
    resp = getattr(client, method)("/", **kwargs)
    assert resp.status_code == status
    assert resp.mimetype == "application/problem+json"
    assert detail in resp.get_json()["detail"]
